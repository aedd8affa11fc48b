"""Server reflection on every node: grpc.reflection.v1 and v1alpha from one servicer, methods resolved to their
service's file (what grpcurl and generic clients ask)."""
from __future__ import annotations

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc

REFLECTION_V1 = "grpc.reflection.v1.ServerReflection"
REFLECTION_V1_FILE = "grpc/reflection/v1/reflection.proto"  # (upstream's name for it, as other servers report it)


def _reflection_v1_descriptor() -> None:
    """Put grpc.reflection.v1 into the default descriptor pool, made from v1alpha's descriptor."""
    # grpcio-reflection ships v1alpha alone (grpc/grpc#38576); v1 is the same protocol under a new package, field for
    # field, so the descriptor reflection describes it by is v1alpha's renamed.
    pool = descriptor_pool.Default()
    try:
        pool.FindFileByName(REFLECTION_V1_FILE)
        return  # (already there: put by an earlier server of this process, or by a library that ships it)
    except KeyError:
        pass
    proto = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(proto)
    old, new = reflection_pb2.DESCRIPTOR.package, REFLECTION_V1.rsplit(".", 1)[0]
    proto.name, proto.package = REFLECTION_V1_FILE, new
    for message in proto.message_type:
        for item in message.field:
            if item.type_name:  # (assigned even empty, it counts as set: a scalar field with one is invalid)
                item.type_name = item.type_name.replace(f".{old}.", f".{new}.")
    for method in proto.service[0].method:
        method.input_type = method.input_type.replace(f".{old}.", f".{new}.")
        method.output_type = method.output_type.replace(f".{old}.", f".{new}.")
    proto.options.java_package = "io.grpc.reflection.v1"
    proto.options.go_package = "google.golang.org/grpc/reflection/grpc_reflection_v1"
    proto.options.ClearField("deprecated")  # (v1alpha is the deprecated one)
    pool.AddSerializedFile(proto.SerializeToString())


class _ReflectionServicer(reflection.aio.ReflectionServicer):
    """grpcio-reflection's servicer, that finds the file of a method as well."""

    def _file_containing_symbol(self, request, fully_qualified_name):
        # The pool finds no method by its name (grpc/grpc#34743), so `grpcurl describe Service.Method` and a generic
        # client resolving a method would be told NOT_FOUND: a method's file is its service's.
        service, _, method = fully_qualified_name.rpartition(".")
        try:
            if method in self._pool.FindServiceByName(service).methods_by_name:
                fully_qualified_name = service
        except KeyError:
            pass  # (not a method: looked up as it is)
        return super()._file_containing_symbol(request, fully_qualified_name)


def enable_reflection(server: grpc.aio.Server, names) -> tuple[str, ...]:
    """Serve reflection of the services named as grpc.reflection.v1 and v1alpha; the names it lists (both included)."""
    # One servicer behind both: a v1 message is the same bytes as its v1alpha twin, so v1alpha's classes parse it.
    _reflection_v1_descriptor()
    names = tuple(names) + (REFLECTION_V1, reflection.SERVICE_NAME)
    servicer = _ReflectionServicer(names)
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(REFLECTION_V1, {
        "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
            servicer.ServerReflectionInfo, request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
            response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString)}),))
    return names
