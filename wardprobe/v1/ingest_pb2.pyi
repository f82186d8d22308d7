from google.rpc import error_details_pb2 as _error_details_pb2
from wardprobe.v1 import results_pb2 as _results_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ResultBatch(_message.Message):
    __slots__ = ("sequence", "results", "spool_depth", "spool_dropped")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    SPOOL_DEPTH_FIELD_NUMBER: _ClassVar[int]
    SPOOL_DROPPED_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    results: _containers.RepeatedCompositeFieldContainer[_results_pb2.Result]
    spool_depth: int
    spool_dropped: int
    def __init__(self, sequence: _Optional[int] = ..., results: _Optional[_Iterable[_Union[_results_pb2.Result, _Mapping]]] = ..., spool_depth: _Optional[int] = ..., spool_dropped: _Optional[int] = ...) -> None: ...

class Rejection(_message.Message):
    __slots__ = ("index", "result_id", "code", "bad_request")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    RESULT_ID_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    BAD_REQUEST_FIELD_NUMBER: _ClassVar[int]
    index: int
    result_id: str
    code: int
    bad_request: _error_details_pb2.BadRequest
    def __init__(self, index: _Optional[int] = ..., result_id: _Optional[str] = ..., code: _Optional[int] = ..., bad_request: _Optional[_Union[_error_details_pb2.BadRequest, _Mapping]] = ...) -> None: ...

class BatchAck(_message.Message):
    __slots__ = ("sequence", "stored", "duplicates", "rejected")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    STORED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    stored: int
    duplicates: int
    rejected: _containers.RepeatedCompositeFieldContainer[Rejection]
    def __init__(self, sequence: _Optional[int] = ..., stored: _Optional[int] = ..., duplicates: _Optional[int] = ..., rejected: _Optional[_Iterable[_Union[Rejection, _Mapping]]] = ...) -> None: ...
