"""google.rpc rich statuses for the aggregator's gRPC services (one place,
so every refusal carries the same kind of detail)."""

from __future__ import annotations

from typing import Any, NoReturn

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status


def rich_status(code: int, message: str, *details: Message) -> grpc.Status:
    """A status with google.rpc detail messages (BadRequest, ErrorInfo, ...)."""
    packed = []
    for detail in details:
        holder = any_pb2.Any()
        holder.Pack(detail)
        packed.append(holder)
    return rpc_status.to_status(status_pb2.Status(code=code, message=message, details=packed))


def bad_request(field: str, description: str) -> error_details_pb2.BadRequest:
    """A BadRequest naming one field and why it was refused."""
    return error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=field, description=description)
        ]
    )


async def abort(context: grpc.aio.ServicerContext[Any, Any], status: grpc.Status) -> NoReturn:
    """End the call with a rich status (what `abort_with_status` does; the
    type stubs only know `abort`)."""
    await context.abort(status.code, status.details, status.trailing_metadata)
