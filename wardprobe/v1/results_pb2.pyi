import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class NetworkKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NETWORK_KIND_UNSPECIFIED: _ClassVar[NetworkKind]
    NETWORK_KIND_FIXED: _ClassVar[NetworkKind]
    NETWORK_KIND_MOBILE: _ClassVar[NetworkKind]

class IpFamily(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    IP_FAMILY_UNSPECIFIED: _ClassVar[IpFamily]
    IP_FAMILY_IPV4: _ClassVar[IpFamily]
    IP_FAMILY_IPV6: _ClassVar[IpFamily]

class ClockSync(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CLOCK_SYNC_UNSPECIFIED: _ClassVar[ClockSync]
    CLOCK_SYNC_SYNCHRONISED: _ClassVar[ClockSync]
    CLOCK_SYNC_UNSYNCHRONISED: _ClassVar[ClockSync]
    CLOCK_SYNC_UNKNOWN: _ClassVar[ClockSync]

class Status(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STATUS_UNSPECIFIED: _ClassVar[Status]
    STATUS_OK: _ClassVar[Status]
    STATUS_FAILED: _ClassVar[Status]
    STATUS_SKIPPED: _ClassVar[Status]

class ReasonKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REASON_KIND_UNSPECIFIED: _ClassVar[ReasonKind]
    REASON_KIND_NONE: _ClassVar[ReasonKind]
    REASON_KIND_NOT_CONFIGURED: _ClassVar[ReasonKind]
    REASON_KIND_DEFERRED: _ClassVar[ReasonKind]
    REASON_KIND_OVER_BUDGET: _ClassVar[ReasonKind]
    REASON_KIND_SERVER_BUSY: _ClassVar[ReasonKind]
    REASON_KIND_TIMEOUT: _ClassVar[ReasonKind]
    REASON_KIND_TOOL_FAILED: _ClassVar[ReasonKind]
    REASON_KIND_NETWORK_ERROR: _ClassVar[ReasonKind]
    REASON_KIND_MALFORMED_OUTPUT: _ClassVar[ReasonKind]
    REASON_KIND_INVALID_TRANSFER: _ClassVar[ReasonKind]
    REASON_KIND_MODEM_UNAVAILABLE: _ClassVar[ReasonKind]

class Direction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DIRECTION_UNSPECIFIED: _ClassVar[Direction]
    DIRECTION_DOWNLOAD: _ClassVar[Direction]
    DIRECTION_UPLOAD: _ClassVar[Direction]

class AccessTech(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACCESS_TECH_UNSPECIFIED: _ClassVar[AccessTech]
    ACCESS_TECH_NONE: _ClassVar[AccessTech]
    ACCESS_TECH_GSM: _ClassVar[AccessTech]
    ACCESS_TECH_UMTS: _ClassVar[AccessTech]
    ACCESS_TECH_LTE: _ClassVar[AccessTech]
    ACCESS_TECH_NR5G_NSA: _ClassVar[AccessTech]
    ACCESS_TECH_NR5G_SA: _ClassVar[AccessTech]

class SinrConversion(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SINR_CONVERSION_UNSPECIFIED: _ClassVar[SinrConversion]
    SINR_CONVERSION_AS_PRINTED: _ClassVar[SinrConversion]
    SINR_CONVERSION_TENTHS: _ClassVar[SinrConversion]
    SINR_CONVERSION_FIFTHS_MINUS_20: _ClassVar[SinrConversion]
NETWORK_KIND_UNSPECIFIED: NetworkKind
NETWORK_KIND_FIXED: NetworkKind
NETWORK_KIND_MOBILE: NetworkKind
IP_FAMILY_UNSPECIFIED: IpFamily
IP_FAMILY_IPV4: IpFamily
IP_FAMILY_IPV6: IpFamily
CLOCK_SYNC_UNSPECIFIED: ClockSync
CLOCK_SYNC_SYNCHRONISED: ClockSync
CLOCK_SYNC_UNSYNCHRONISED: ClockSync
CLOCK_SYNC_UNKNOWN: ClockSync
STATUS_UNSPECIFIED: Status
STATUS_OK: Status
STATUS_FAILED: Status
STATUS_SKIPPED: Status
REASON_KIND_UNSPECIFIED: ReasonKind
REASON_KIND_NONE: ReasonKind
REASON_KIND_NOT_CONFIGURED: ReasonKind
REASON_KIND_DEFERRED: ReasonKind
REASON_KIND_OVER_BUDGET: ReasonKind
REASON_KIND_SERVER_BUSY: ReasonKind
REASON_KIND_TIMEOUT: ReasonKind
REASON_KIND_TOOL_FAILED: ReasonKind
REASON_KIND_NETWORK_ERROR: ReasonKind
REASON_KIND_MALFORMED_OUTPUT: ReasonKind
REASON_KIND_INVALID_TRANSFER: ReasonKind
REASON_KIND_MODEM_UNAVAILABLE: ReasonKind
DIRECTION_UNSPECIFIED: Direction
DIRECTION_DOWNLOAD: Direction
DIRECTION_UPLOAD: Direction
ACCESS_TECH_UNSPECIFIED: AccessTech
ACCESS_TECH_NONE: AccessTech
ACCESS_TECH_GSM: AccessTech
ACCESS_TECH_UMTS: AccessTech
ACCESS_TECH_LTE: AccessTech
ACCESS_TECH_NR5G_NSA: AccessTech
ACCESS_TECH_NR5G_SA: AccessTech
SINR_CONVERSION_UNSPECIFIED: SinrConversion
SINR_CONVERSION_AS_PRINTED: SinrConversion
SINR_CONVERSION_TENTHS: SinrConversion
SINR_CONVERSION_FIFTHS_MINUS_20: SinrConversion

class Method(_message.Message):
    __slots__ = ("tool", "tool_version", "server", "server_port", "duration_s", "streams")
    TOOL_FIELD_NUMBER: _ClassVar[int]
    TOOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    SERVER_FIELD_NUMBER: _ClassVar[int]
    SERVER_PORT_FIELD_NUMBER: _ClassVar[int]
    DURATION_S_FIELD_NUMBER: _ClassVar[int]
    STREAMS_FIELD_NUMBER: _ClassVar[int]
    tool: str
    tool_version: str
    server: str
    server_port: int
    duration_s: float
    streams: int
    def __init__(self, tool: _Optional[str] = ..., tool_version: _Optional[str] = ..., server: _Optional[str] = ..., server_port: _Optional[int] = ..., duration_s: _Optional[float] = ..., streams: _Optional[int] = ...) -> None: ...

class Envelope(_message.Message):
    __slots__ = ("result_id", "measured_at", "agent_version", "interface", "network_kind", "ip_family", "clock_sync", "method", "status", "status_reason", "ward_code", "probe_id", "status_reason_kind")
    RESULT_ID_FIELD_NUMBER: _ClassVar[int]
    MEASURED_AT_FIELD_NUMBER: _ClassVar[int]
    AGENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    INTERFACE_FIELD_NUMBER: _ClassVar[int]
    NETWORK_KIND_FIELD_NUMBER: _ClassVar[int]
    IP_FAMILY_FIELD_NUMBER: _ClassVar[int]
    CLOCK_SYNC_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STATUS_REASON_FIELD_NUMBER: _ClassVar[int]
    WARD_CODE_FIELD_NUMBER: _ClassVar[int]
    PROBE_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_REASON_KIND_FIELD_NUMBER: _ClassVar[int]
    result_id: str
    measured_at: _timestamp_pb2.Timestamp
    agent_version: str
    interface: str
    network_kind: NetworkKind
    ip_family: IpFamily
    clock_sync: ClockSync
    method: Method
    status: Status
    status_reason: str
    ward_code: int
    probe_id: str
    status_reason_kind: ReasonKind
    def __init__(self, result_id: _Optional[str] = ..., measured_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., agent_version: _Optional[str] = ..., interface: _Optional[str] = ..., network_kind: _Optional[_Union[NetworkKind, str]] = ..., ip_family: _Optional[_Union[IpFamily, str]] = ..., clock_sync: _Optional[_Union[ClockSync, str]] = ..., method: _Optional[_Union[Method, _Mapping]] = ..., status: _Optional[_Union[Status, str]] = ..., status_reason: _Optional[str] = ..., ward_code: _Optional[int] = ..., probe_id: _Optional[str] = ..., status_reason_kind: _Optional[_Union[ReasonKind, str]] = ...) -> None: ...

class ThroughputResult(_message.Message):
    __slots__ = ("direction", "mbps", "bytes_transferred", "measured_s", "retransmits", "omitted_s", "link_speed_mbps", "mtu", "local_address", "idle_rtt_median_ms", "loaded_rtt_median_ms", "loaded_rtt_p95_ms", "cross_traffic_bytes_per_s", "cpu_load_pct", "access_tech", "access_tech_end", "mcc_mnc", "operator_name")
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    MBPS_FIELD_NUMBER: _ClassVar[int]
    BYTES_TRANSFERRED_FIELD_NUMBER: _ClassVar[int]
    MEASURED_S_FIELD_NUMBER: _ClassVar[int]
    RETRANSMITS_FIELD_NUMBER: _ClassVar[int]
    OMITTED_S_FIELD_NUMBER: _ClassVar[int]
    LINK_SPEED_MBPS_FIELD_NUMBER: _ClassVar[int]
    MTU_FIELD_NUMBER: _ClassVar[int]
    LOCAL_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    IDLE_RTT_MEDIAN_MS_FIELD_NUMBER: _ClassVar[int]
    LOADED_RTT_MEDIAN_MS_FIELD_NUMBER: _ClassVar[int]
    LOADED_RTT_P95_MS_FIELD_NUMBER: _ClassVar[int]
    CROSS_TRAFFIC_BYTES_PER_S_FIELD_NUMBER: _ClassVar[int]
    CPU_LOAD_PCT_FIELD_NUMBER: _ClassVar[int]
    ACCESS_TECH_FIELD_NUMBER: _ClassVar[int]
    ACCESS_TECH_END_FIELD_NUMBER: _ClassVar[int]
    MCC_MNC_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_NAME_FIELD_NUMBER: _ClassVar[int]
    direction: Direction
    mbps: float
    bytes_transferred: int
    measured_s: float
    retransmits: int
    omitted_s: float
    link_speed_mbps: float
    mtu: int
    local_address: str
    idle_rtt_median_ms: float
    loaded_rtt_median_ms: float
    loaded_rtt_p95_ms: float
    cross_traffic_bytes_per_s: float
    cpu_load_pct: float
    access_tech: AccessTech
    access_tech_end: AccessTech
    mcc_mnc: str
    operator_name: str
    def __init__(self, direction: _Optional[_Union[Direction, str]] = ..., mbps: _Optional[float] = ..., bytes_transferred: _Optional[int] = ..., measured_s: _Optional[float] = ..., retransmits: _Optional[int] = ..., omitted_s: _Optional[float] = ..., link_speed_mbps: _Optional[float] = ..., mtu: _Optional[int] = ..., local_address: _Optional[str] = ..., idle_rtt_median_ms: _Optional[float] = ..., loaded_rtt_median_ms: _Optional[float] = ..., loaded_rtt_p95_ms: _Optional[float] = ..., cross_traffic_bytes_per_s: _Optional[float] = ..., cpu_load_pct: _Optional[float] = ..., access_tech: _Optional[_Union[AccessTech, str]] = ..., access_tech_end: _Optional[_Union[AccessTech, str]] = ..., mcc_mnc: _Optional[str] = ..., operator_name: _Optional[str] = ...) -> None: ...

class LatencyResult(_message.Message):
    __slots__ = ("protocol", "target", "target_port", "packets_sent", "packets_received", "rtt_min_ms", "rtt_median_ms", "rtt_p95_ms", "rtt_max_ms", "jitter_ms", "loss_pct", "access_tech", "mcc_mnc", "operator_name")
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    TARGET_PORT_FIELD_NUMBER: _ClassVar[int]
    PACKETS_SENT_FIELD_NUMBER: _ClassVar[int]
    PACKETS_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    RTT_MIN_MS_FIELD_NUMBER: _ClassVar[int]
    RTT_MEDIAN_MS_FIELD_NUMBER: _ClassVar[int]
    RTT_P95_MS_FIELD_NUMBER: _ClassVar[int]
    RTT_MAX_MS_FIELD_NUMBER: _ClassVar[int]
    JITTER_MS_FIELD_NUMBER: _ClassVar[int]
    LOSS_PCT_FIELD_NUMBER: _ClassVar[int]
    ACCESS_TECH_FIELD_NUMBER: _ClassVar[int]
    MCC_MNC_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_NAME_FIELD_NUMBER: _ClassVar[int]
    protocol: str
    target: str
    target_port: int
    packets_sent: int
    packets_received: int
    rtt_min_ms: float
    rtt_median_ms: float
    rtt_p95_ms: float
    rtt_max_ms: float
    jitter_ms: float
    loss_pct: float
    access_tech: AccessTech
    mcc_mnc: str
    operator_name: str
    def __init__(self, protocol: _Optional[str] = ..., target: _Optional[str] = ..., target_port: _Optional[int] = ..., packets_sent: _Optional[int] = ..., packets_received: _Optional[int] = ..., rtt_min_ms: _Optional[float] = ..., rtt_median_ms: _Optional[float] = ..., rtt_p95_ms: _Optional[float] = ..., rtt_max_ms: _Optional[float] = ..., jitter_ms: _Optional[float] = ..., loss_pct: _Optional[float] = ..., access_tech: _Optional[_Union[AccessTech, str]] = ..., mcc_mnc: _Optional[str] = ..., operator_name: _Optional[str] = ...) -> None: ...

class Ipv6Result(_message.Message):
    __slots__ = ("has_global_address", "has_default_route", "aaaa_resolves", "ipv6_only_tcp_ok", "ipv6_only_connect_ms", "large_packet_ok", "dual_stack_family", "ipv6_capable", "ipv6_preferred", "global_prefix")
    HAS_GLOBAL_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    HAS_DEFAULT_ROUTE_FIELD_NUMBER: _ClassVar[int]
    AAAA_RESOLVES_FIELD_NUMBER: _ClassVar[int]
    IPV6_ONLY_TCP_OK_FIELD_NUMBER: _ClassVar[int]
    IPV6_ONLY_CONNECT_MS_FIELD_NUMBER: _ClassVar[int]
    LARGE_PACKET_OK_FIELD_NUMBER: _ClassVar[int]
    DUAL_STACK_FAMILY_FIELD_NUMBER: _ClassVar[int]
    IPV6_CAPABLE_FIELD_NUMBER: _ClassVar[int]
    IPV6_PREFERRED_FIELD_NUMBER: _ClassVar[int]
    GLOBAL_PREFIX_FIELD_NUMBER: _ClassVar[int]
    has_global_address: bool
    has_default_route: bool
    aaaa_resolves: bool
    ipv6_only_tcp_ok: bool
    ipv6_only_connect_ms: float
    large_packet_ok: bool
    dual_stack_family: IpFamily
    ipv6_capable: bool
    ipv6_preferred: bool
    global_prefix: str
    def __init__(self, has_global_address: _Optional[bool] = ..., has_default_route: _Optional[bool] = ..., aaaa_resolves: _Optional[bool] = ..., ipv6_only_tcp_ok: _Optional[bool] = ..., ipv6_only_connect_ms: _Optional[float] = ..., large_packet_ok: _Optional[bool] = ..., dual_stack_family: _Optional[_Union[IpFamily, str]] = ..., ipv6_capable: _Optional[bool] = ..., ipv6_preferred: _Optional[bool] = ..., global_prefix: _Optional[str] = ...) -> None: ...

class CellularObservation(_message.Message):
    __slots__ = ("access_tech", "mcc_mnc", "operator_name", "band", "channel", "cell_id", "tac", "rsrp_dbm", "rsrq_db", "sinr_db", "registration_state", "modem_model", "modem_5g_capable", "backend", "nr_band", "nr_rsrp_dbm", "nr_sinr_db", "pci", "nr_channel", "nr_pci", "rssi_dbm", "rscp_dbm", "ecio_db", "sinr_raw", "sinr_conversion", "nr_sinr_raw", "nr_sinr_conversion")
    ACCESS_TECH_FIELD_NUMBER: _ClassVar[int]
    MCC_MNC_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_NAME_FIELD_NUMBER: _ClassVar[int]
    BAND_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    CELL_ID_FIELD_NUMBER: _ClassVar[int]
    TAC_FIELD_NUMBER: _ClassVar[int]
    RSRP_DBM_FIELD_NUMBER: _ClassVar[int]
    RSRQ_DB_FIELD_NUMBER: _ClassVar[int]
    SINR_DB_FIELD_NUMBER: _ClassVar[int]
    REGISTRATION_STATE_FIELD_NUMBER: _ClassVar[int]
    MODEM_MODEL_FIELD_NUMBER: _ClassVar[int]
    MODEM_5G_CAPABLE_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    NR_BAND_FIELD_NUMBER: _ClassVar[int]
    NR_RSRP_DBM_FIELD_NUMBER: _ClassVar[int]
    NR_SINR_DB_FIELD_NUMBER: _ClassVar[int]
    PCI_FIELD_NUMBER: _ClassVar[int]
    NR_CHANNEL_FIELD_NUMBER: _ClassVar[int]
    NR_PCI_FIELD_NUMBER: _ClassVar[int]
    RSSI_DBM_FIELD_NUMBER: _ClassVar[int]
    RSCP_DBM_FIELD_NUMBER: _ClassVar[int]
    ECIO_DB_FIELD_NUMBER: _ClassVar[int]
    SINR_RAW_FIELD_NUMBER: _ClassVar[int]
    SINR_CONVERSION_FIELD_NUMBER: _ClassVar[int]
    NR_SINR_RAW_FIELD_NUMBER: _ClassVar[int]
    NR_SINR_CONVERSION_FIELD_NUMBER: _ClassVar[int]
    access_tech: AccessTech
    mcc_mnc: str
    operator_name: str
    band: int
    channel: int
    cell_id: str
    tac: str
    rsrp_dbm: float
    rsrq_db: float
    sinr_db: float
    registration_state: str
    modem_model: str
    modem_5g_capable: bool
    backend: str
    nr_band: int
    nr_rsrp_dbm: float
    nr_sinr_db: float
    pci: int
    nr_channel: int
    nr_pci: int
    rssi_dbm: float
    rscp_dbm: float
    ecio_db: float
    sinr_raw: float
    sinr_conversion: SinrConversion
    nr_sinr_raw: float
    nr_sinr_conversion: SinrConversion
    def __init__(self, access_tech: _Optional[_Union[AccessTech, str]] = ..., mcc_mnc: _Optional[str] = ..., operator_name: _Optional[str] = ..., band: _Optional[int] = ..., channel: _Optional[int] = ..., cell_id: _Optional[str] = ..., tac: _Optional[str] = ..., rsrp_dbm: _Optional[float] = ..., rsrq_db: _Optional[float] = ..., sinr_db: _Optional[float] = ..., registration_state: _Optional[str] = ..., modem_model: _Optional[str] = ..., modem_5g_capable: _Optional[bool] = ..., backend: _Optional[str] = ..., nr_band: _Optional[int] = ..., nr_rsrp_dbm: _Optional[float] = ..., nr_sinr_db: _Optional[float] = ..., pci: _Optional[int] = ..., nr_channel: _Optional[int] = ..., nr_pci: _Optional[int] = ..., rssi_dbm: _Optional[float] = ..., rscp_dbm: _Optional[float] = ..., ecio_db: _Optional[float] = ..., sinr_raw: _Optional[float] = ..., sinr_conversion: _Optional[_Union[SinrConversion, str]] = ..., nr_sinr_raw: _Optional[float] = ..., nr_sinr_conversion: _Optional[_Union[SinrConversion, str]] = ...) -> None: ...

class TracerouteHop(_message.Message):
    __slots__ = ("hop", "address", "rtts_ms", "probes_sent", "loss_pct", "icmp_type", "icmp_code", "reply_ttl", "segment")
    HOP_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    RTTS_MS_FIELD_NUMBER: _ClassVar[int]
    PROBES_SENT_FIELD_NUMBER: _ClassVar[int]
    LOSS_PCT_FIELD_NUMBER: _ClassVar[int]
    ICMP_TYPE_FIELD_NUMBER: _ClassVar[int]
    ICMP_CODE_FIELD_NUMBER: _ClassVar[int]
    REPLY_TTL_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    hop: int
    address: str
    rtts_ms: _containers.RepeatedScalarFieldContainer[float]
    probes_sent: int
    loss_pct: float
    icmp_type: int
    icmp_code: int
    reply_ttl: int
    segment: str
    def __init__(self, hop: _Optional[int] = ..., address: _Optional[str] = ..., rtts_ms: _Optional[_Iterable[float]] = ..., probes_sent: _Optional[int] = ..., loss_pct: _Optional[float] = ..., icmp_type: _Optional[int] = ..., icmp_code: _Optional[int] = ..., reply_ttl: _Optional[int] = ..., segment: _Optional[str] = ...) -> None: ...

class TracerouteResult(_message.Message):
    __slots__ = ("protocol", "target", "target_port", "flow_id", "max_hops", "reached", "stop_reason", "hop_count", "first_outside_hop", "first_outside_address", "home_rtt_ms", "access_rtt_ms", "target_rtt_ms", "hops", "access_tech", "mcc_mnc", "operator_name")
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    TARGET_PORT_FIELD_NUMBER: _ClassVar[int]
    FLOW_ID_FIELD_NUMBER: _ClassVar[int]
    MAX_HOPS_FIELD_NUMBER: _ClassVar[int]
    REACHED_FIELD_NUMBER: _ClassVar[int]
    STOP_REASON_FIELD_NUMBER: _ClassVar[int]
    HOP_COUNT_FIELD_NUMBER: _ClassVar[int]
    FIRST_OUTSIDE_HOP_FIELD_NUMBER: _ClassVar[int]
    FIRST_OUTSIDE_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    HOME_RTT_MS_FIELD_NUMBER: _ClassVar[int]
    ACCESS_RTT_MS_FIELD_NUMBER: _ClassVar[int]
    TARGET_RTT_MS_FIELD_NUMBER: _ClassVar[int]
    HOPS_FIELD_NUMBER: _ClassVar[int]
    ACCESS_TECH_FIELD_NUMBER: _ClassVar[int]
    MCC_MNC_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_NAME_FIELD_NUMBER: _ClassVar[int]
    protocol: str
    target: str
    target_port: int
    flow_id: int
    max_hops: int
    reached: bool
    stop_reason: str
    hop_count: int
    first_outside_hop: int
    first_outside_address: str
    home_rtt_ms: float
    access_rtt_ms: float
    target_rtt_ms: float
    hops: _containers.RepeatedCompositeFieldContainer[TracerouteHop]
    access_tech: AccessTech
    mcc_mnc: str
    operator_name: str
    def __init__(self, protocol: _Optional[str] = ..., target: _Optional[str] = ..., target_port: _Optional[int] = ..., flow_id: _Optional[int] = ..., max_hops: _Optional[int] = ..., reached: _Optional[bool] = ..., stop_reason: _Optional[str] = ..., hop_count: _Optional[int] = ..., first_outside_hop: _Optional[int] = ..., first_outside_address: _Optional[str] = ..., home_rtt_ms: _Optional[float] = ..., access_rtt_ms: _Optional[float] = ..., target_rtt_ms: _Optional[float] = ..., hops: _Optional[_Iterable[_Union[TracerouteHop, _Mapping]]] = ..., access_tech: _Optional[_Union[AccessTech, str]] = ..., mcc_mnc: _Optional[str] = ..., operator_name: _Optional[str] = ...) -> None: ...

class PacketTooBig(_message.Message):
    __slots__ = ("mtu_bytes", "sender", "probe_bytes")
    MTU_BYTES_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    PROBE_BYTES_FIELD_NUMBER: _ClassVar[int]
    mtu_bytes: int
    sender: str
    probe_bytes: int
    def __init__(self, mtu_bytes: _Optional[int] = ..., sender: _Optional[str] = ..., probe_bytes: _Optional[int] = ...) -> None: ...

class Ipv6PmtuResult(_message.Message):
    __slots__ = ("target", "interface_mtu", "path_mtu", "ptb_received", "pmtu_blackhole", "smallest_lost_bytes", "probes_sent", "ptb_messages")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    INTERFACE_MTU_FIELD_NUMBER: _ClassVar[int]
    PATH_MTU_FIELD_NUMBER: _ClassVar[int]
    PTB_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    PMTU_BLACKHOLE_FIELD_NUMBER: _ClassVar[int]
    SMALLEST_LOST_BYTES_FIELD_NUMBER: _ClassVar[int]
    PROBES_SENT_FIELD_NUMBER: _ClassVar[int]
    PTB_MESSAGES_FIELD_NUMBER: _ClassVar[int]
    target: str
    interface_mtu: int
    path_mtu: int
    ptb_received: bool
    pmtu_blackhole: bool
    smallest_lost_bytes: int
    probes_sent: int
    ptb_messages: _containers.RepeatedCompositeFieldContainer[PacketTooBig]
    def __init__(self, target: _Optional[str] = ..., interface_mtu: _Optional[int] = ..., path_mtu: _Optional[int] = ..., ptb_received: _Optional[bool] = ..., pmtu_blackhole: _Optional[bool] = ..., smallest_lost_bytes: _Optional[int] = ..., probes_sent: _Optional[int] = ..., ptb_messages: _Optional[_Iterable[_Union[PacketTooBig, _Mapping]]] = ...) -> None: ...

class DnsQuery(_message.Message):
    __slots__ = ("hostname", "rdtype", "rcode", "answers", "time_ms", "transport", "failed", "reason")
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    RDTYPE_FIELD_NUMBER: _ClassVar[int]
    RCODE_FIELD_NUMBER: _ClassVar[int]
    ANSWERS_FIELD_NUMBER: _ClassVar[int]
    TIME_MS_FIELD_NUMBER: _ClassVar[int]
    TRANSPORT_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    hostname: str
    rdtype: str
    rcode: str
    answers: _containers.RepeatedScalarFieldContainer[str]
    time_ms: float
    transport: str
    failed: bool
    reason: str
    def __init__(self, hostname: _Optional[str] = ..., rdtype: _Optional[str] = ..., rcode: _Optional[str] = ..., answers: _Optional[_Iterable[str]] = ..., time_ms: _Optional[float] = ..., transport: _Optional[str] = ..., failed: _Optional[bool] = ..., reason: _Optional[str] = ...) -> None: ...

class DnsResult(_message.Message):
    __slots__ = ("resolver", "resolver_kind", "resolver_port", "queries_sent", "queries_failed", "failure_pct", "time_median_ms", "queries")
    RESOLVER_FIELD_NUMBER: _ClassVar[int]
    RESOLVER_KIND_FIELD_NUMBER: _ClassVar[int]
    RESOLVER_PORT_FIELD_NUMBER: _ClassVar[int]
    QUERIES_SENT_FIELD_NUMBER: _ClassVar[int]
    QUERIES_FAILED_FIELD_NUMBER: _ClassVar[int]
    FAILURE_PCT_FIELD_NUMBER: _ClassVar[int]
    TIME_MEDIAN_MS_FIELD_NUMBER: _ClassVar[int]
    QUERIES_FIELD_NUMBER: _ClassVar[int]
    resolver: str
    resolver_kind: str
    resolver_port: int
    queries_sent: int
    queries_failed: int
    failure_pct: float
    time_median_ms: float
    queries: _containers.RepeatedCompositeFieldContainer[DnsQuery]
    def __init__(self, resolver: _Optional[str] = ..., resolver_kind: _Optional[str] = ..., resolver_port: _Optional[int] = ..., queries_sent: _Optional[int] = ..., queries_failed: _Optional[int] = ..., failure_pct: _Optional[float] = ..., time_median_ms: _Optional[float] = ..., queries: _Optional[_Iterable[_Union[DnsQuery, _Mapping]]] = ...) -> None: ...

class ServiceCheck(_message.Message):
    __slots__ = ("hostname", "department", "kind", "aaaa_ok", "aaaa", "web_ok", "connect_ms", "tls_ms", "ns_ok", "mx_ok", "ready", "aaaa_reason", "web_reason", "ns_reason", "mx_reason")
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    DEPARTMENT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    AAAA_OK_FIELD_NUMBER: _ClassVar[int]
    AAAA_FIELD_NUMBER: _ClassVar[int]
    WEB_OK_FIELD_NUMBER: _ClassVar[int]
    CONNECT_MS_FIELD_NUMBER: _ClassVar[int]
    TLS_MS_FIELD_NUMBER: _ClassVar[int]
    NS_OK_FIELD_NUMBER: _ClassVar[int]
    MX_OK_FIELD_NUMBER: _ClassVar[int]
    READY_FIELD_NUMBER: _ClassVar[int]
    AAAA_REASON_FIELD_NUMBER: _ClassVar[int]
    WEB_REASON_FIELD_NUMBER: _ClassVar[int]
    NS_REASON_FIELD_NUMBER: _ClassVar[int]
    MX_REASON_FIELD_NUMBER: _ClassVar[int]
    hostname: str
    department: str
    kind: str
    aaaa_ok: bool
    aaaa: _containers.RepeatedScalarFieldContainer[str]
    web_ok: bool
    connect_ms: float
    tls_ms: float
    ns_ok: bool
    mx_ok: bool
    ready: bool
    aaaa_reason: str
    web_reason: str
    ns_reason: str
    mx_reason: str
    def __init__(self, hostname: _Optional[str] = ..., department: _Optional[str] = ..., kind: _Optional[str] = ..., aaaa_ok: _Optional[bool] = ..., aaaa: _Optional[_Iterable[str]] = ..., web_ok: _Optional[bool] = ..., connect_ms: _Optional[float] = ..., tls_ms: _Optional[float] = ..., ns_ok: _Optional[bool] = ..., mx_ok: _Optional[bool] = ..., ready: _Optional[bool] = ..., aaaa_reason: _Optional[str] = ..., web_reason: _Optional[str] = ..., ns_reason: _Optional[str] = ..., mx_reason: _Optional[str] = ...) -> None: ...

class Ipv6ServicesResult(_message.Message):
    __slots__ = ("resolver", "services_checked", "services_ready", "checks")
    RESOLVER_FIELD_NUMBER: _ClassVar[int]
    SERVICES_CHECKED_FIELD_NUMBER: _ClassVar[int]
    SERVICES_READY_FIELD_NUMBER: _ClassVar[int]
    CHECKS_FIELD_NUMBER: _ClassVar[int]
    resolver: str
    services_checked: int
    services_ready: int
    checks: _containers.RepeatedCompositeFieldContainer[ServiceCheck]
    def __init__(self, resolver: _Optional[str] = ..., services_checked: _Optional[int] = ..., services_ready: _Optional[int] = ..., checks: _Optional[_Iterable[_Union[ServiceCheck, _Mapping]]] = ...) -> None: ...

class Result(_message.Message):
    __slots__ = ("envelope", "throughput", "latency", "ipv6", "cellular", "traceroute", "ipv6_pmtu", "dns", "ipv6_services")
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    THROUGHPUT_FIELD_NUMBER: _ClassVar[int]
    LATENCY_FIELD_NUMBER: _ClassVar[int]
    IPV6_FIELD_NUMBER: _ClassVar[int]
    CELLULAR_FIELD_NUMBER: _ClassVar[int]
    TRACEROUTE_FIELD_NUMBER: _ClassVar[int]
    IPV6_PMTU_FIELD_NUMBER: _ClassVar[int]
    DNS_FIELD_NUMBER: _ClassVar[int]
    IPV6_SERVICES_FIELD_NUMBER: _ClassVar[int]
    envelope: Envelope
    throughput: ThroughputResult
    latency: LatencyResult
    ipv6: Ipv6Result
    cellular: CellularObservation
    traceroute: TracerouteResult
    ipv6_pmtu: Ipv6PmtuResult
    dns: DnsResult
    ipv6_services: Ipv6ServicesResult
    def __init__(self, envelope: _Optional[_Union[Envelope, _Mapping]] = ..., throughput: _Optional[_Union[ThroughputResult, _Mapping]] = ..., latency: _Optional[_Union[LatencyResult, _Mapping]] = ..., ipv6: _Optional[_Union[Ipv6Result, _Mapping]] = ..., cellular: _Optional[_Union[CellularObservation, _Mapping]] = ..., traceroute: _Optional[_Union[TracerouteResult, _Mapping]] = ..., ipv6_pmtu: _Optional[_Union[Ipv6PmtuResult, _Mapping]] = ..., dns: _Optional[_Union[DnsResult, _Mapping]] = ..., ipv6_services: _Optional[_Union[Ipv6ServicesResult, _Mapping]] = ...) -> None: ...
