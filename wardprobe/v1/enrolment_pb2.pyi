from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CaCertificateRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CaCertificateResponse(_message.Message):
    __slots__ = ("ca_certificate_pem",)
    CA_CERTIFICATE_PEM_FIELD_NUMBER: _ClassVar[int]
    ca_certificate_pem: bytes
    def __init__(self, ca_certificate_pem: _Optional[bytes] = ...) -> None: ...

class EnrolRequest(_message.Message):
    __slots__ = ("bootstrap_token", "csr_pem", "hostname", "agent_version")
    BOOTSTRAP_TOKEN_FIELD_NUMBER: _ClassVar[int]
    CSR_PEM_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    AGENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    bootstrap_token: str
    csr_pem: bytes
    hostname: str
    agent_version: str
    def __init__(self, bootstrap_token: _Optional[str] = ..., csr_pem: _Optional[bytes] = ..., hostname: _Optional[str] = ..., agent_version: _Optional[str] = ...) -> None: ...

class EnrolResponse(_message.Message):
    __slots__ = ("probe_id", "certificate_pem", "ca_certificate_pem", "ward_code", "ward_name", "site_class", "ingest_address")
    PROBE_ID_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_PEM_FIELD_NUMBER: _ClassVar[int]
    CA_CERTIFICATE_PEM_FIELD_NUMBER: _ClassVar[int]
    WARD_CODE_FIELD_NUMBER: _ClassVar[int]
    WARD_NAME_FIELD_NUMBER: _ClassVar[int]
    SITE_CLASS_FIELD_NUMBER: _ClassVar[int]
    INGEST_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    probe_id: str
    certificate_pem: bytes
    ca_certificate_pem: bytes
    ward_code: int
    ward_name: str
    site_class: str
    ingest_address: str
    def __init__(self, probe_id: _Optional[str] = ..., certificate_pem: _Optional[bytes] = ..., ca_certificate_pem: _Optional[bytes] = ..., ward_code: _Optional[int] = ..., ward_name: _Optional[str] = ..., site_class: _Optional[str] = ..., ingest_address: _Optional[str] = ...) -> None: ...

class ConfigRequest(_message.Message):
    __slots__ = ("agent_version",)
    AGENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    agent_version: str
    def __init__(self, agent_version: _Optional[str] = ...) -> None: ...

class ScheduleEntry(_message.Message):
    __slots__ = ("measurement", "interval_s", "jitter_s", "network_kind")
    MEASUREMENT_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_S_FIELD_NUMBER: _ClassVar[int]
    JITTER_S_FIELD_NUMBER: _ClassVar[int]
    NETWORK_KIND_FIELD_NUMBER: _ClassVar[int]
    measurement: str
    interval_s: int
    jitter_s: int
    network_kind: str
    def __init__(self, measurement: _Optional[str] = ..., interval_s: _Optional[int] = ..., jitter_s: _Optional[int] = ..., network_kind: _Optional[str] = ...) -> None: ...

class ReferenceServer(_message.Message):
    __slots__ = ("host", "iperf3_ports", "tcp_echo_port", "ipv6_only_host", "dual_stack_host", "dns_server", "dns_port")
    HOST_FIELD_NUMBER: _ClassVar[int]
    IPERF3_PORTS_FIELD_NUMBER: _ClassVar[int]
    TCP_ECHO_PORT_FIELD_NUMBER: _ClassVar[int]
    IPV6_ONLY_HOST_FIELD_NUMBER: _ClassVar[int]
    DUAL_STACK_HOST_FIELD_NUMBER: _ClassVar[int]
    DNS_SERVER_FIELD_NUMBER: _ClassVar[int]
    DNS_PORT_FIELD_NUMBER: _ClassVar[int]
    host: str
    iperf3_ports: _containers.RepeatedScalarFieldContainer[int]
    tcp_echo_port: int
    ipv6_only_host: str
    dual_stack_host: str
    dns_server: str
    dns_port: int
    def __init__(self, host: _Optional[str] = ..., iperf3_ports: _Optional[_Iterable[int]] = ..., tcp_echo_port: _Optional[int] = ..., ipv6_only_host: _Optional[str] = ..., dual_stack_host: _Optional[str] = ..., dns_server: _Optional[str] = ..., dns_port: _Optional[int] = ...) -> None: ...

class AgentConfig(_message.Message):
    __slots__ = ("probe_id", "ward_code", "ward_name", "site_class", "schedule", "reference_server", "throughput_duration_s", "throughput_streams", "latency_count", "latency_interval_s", "throughput_slot_period_s", "throughput_slot_offset_s", "throughput_slot_length_s", "throughput_port_order", "services", "services_ca_pem")
    PROBE_ID_FIELD_NUMBER: _ClassVar[int]
    WARD_CODE_FIELD_NUMBER: _ClassVar[int]
    WARD_NAME_FIELD_NUMBER: _ClassVar[int]
    SITE_CLASS_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_SERVER_FIELD_NUMBER: _ClassVar[int]
    THROUGHPUT_DURATION_S_FIELD_NUMBER: _ClassVar[int]
    THROUGHPUT_STREAMS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_COUNT_FIELD_NUMBER: _ClassVar[int]
    LATENCY_INTERVAL_S_FIELD_NUMBER: _ClassVar[int]
    THROUGHPUT_SLOT_PERIOD_S_FIELD_NUMBER: _ClassVar[int]
    THROUGHPUT_SLOT_OFFSET_S_FIELD_NUMBER: _ClassVar[int]
    THROUGHPUT_SLOT_LENGTH_S_FIELD_NUMBER: _ClassVar[int]
    THROUGHPUT_PORT_ORDER_FIELD_NUMBER: _ClassVar[int]
    SERVICES_FIELD_NUMBER: _ClassVar[int]
    SERVICES_CA_PEM_FIELD_NUMBER: _ClassVar[int]
    probe_id: str
    ward_code: int
    ward_name: str
    site_class: str
    schedule: _containers.RepeatedCompositeFieldContainer[ScheduleEntry]
    reference_server: ReferenceServer
    throughput_duration_s: int
    throughput_streams: int
    latency_count: int
    latency_interval_s: float
    throughput_slot_period_s: int
    throughput_slot_offset_s: int
    throughput_slot_length_s: int
    throughput_port_order: _containers.RepeatedScalarFieldContainer[int]
    services: _containers.RepeatedCompositeFieldContainer[CityService]
    services_ca_pem: bytes
    def __init__(self, probe_id: _Optional[str] = ..., ward_code: _Optional[int] = ..., ward_name: _Optional[str] = ..., site_class: _Optional[str] = ..., schedule: _Optional[_Iterable[_Union[ScheduleEntry, _Mapping]]] = ..., reference_server: _Optional[_Union[ReferenceServer, _Mapping]] = ..., throughput_duration_s: _Optional[int] = ..., throughput_streams: _Optional[int] = ..., latency_count: _Optional[int] = ..., latency_interval_s: _Optional[float] = ..., throughput_slot_period_s: _Optional[int] = ..., throughput_slot_offset_s: _Optional[int] = ..., throughput_slot_length_s: _Optional[int] = ..., throughput_port_order: _Optional[_Iterable[int]] = ..., services: _Optional[_Iterable[_Union[CityService, _Mapping]]] = ..., services_ca_pem: _Optional[bytes] = ...) -> None: ...

class CityService(_message.Message):
    __slots__ = ("name", "department", "kind")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DEPARTMENT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    name: str
    department: str
    kind: str
    def __init__(self, name: _Optional[str] = ..., department: _Optional[str] = ..., kind: _Optional[str] = ...) -> None: ...
