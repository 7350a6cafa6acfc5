#!/usr/bin/python3
"""A Python gRPC client of the token broker, built only from our proto.

Generates Python stubs from tokenbroker/v1/token_service.proto with
grpc_tools.protoc into --out, imports them and exercises the TokenService API
against a running broker. It is driven by test/polyglot/python-client.test.ts
and writes one JSON object per line on stdout, each with a "step" field:

  stubs             the stubs were generated and imported
  get               GetToken(demo app, ACCESS_TOKEN)
  get_unknown_app   GetToken for an app the broker does not know (an error)
  get_kind_unset    GetToken with kind left unset (an error)
  invalidate        InvalidateToken(the value from "get")
  invalidate_stale  InvalidateToken(the same value again), now replaced
  watch_first       the first message of WatchToken
                    (the test now refreshes the token from the Node side)
  watch_node        the next message, caused by the Node-side refresh
  watch_invalidate  InvalidateToken(watch_node's value), sent from here
  watch_python      the next message, caused by that InvalidateToken
  done              the stream was cancelled and everything went as planned

After every line but the last it waits for one line on stdin before going
on, so the test can look at the broker and the emulator while nothing moves
(and refresh the token from the Node side after watch_first). By hand: press
Enter after each line, and refresh the token elsewhere after watch_first.

On a failure it writes {"step": "error", ...} and exits 1. When grpc or
grpc_tools cannot be imported it writes {"step": "missing_deps", ...} and
exits 3. Needs the Debian interpreter with python3-grpcio,
python3-grpc-tools and python3-protobuf (scripts/install-test-deps.sh).
"""

import argparse
import json
import os
import sys

PROTO_FILE = "tokenbroker/v1/token_service.proto"


FINAL_STEPS = ("done", "error", "missing_deps")


def emit(step, **fields):
    print(json.dumps({"step": step, **fields}, sort_keys=True), flush=True)
    if step not in FINAL_STEPS and sys.stdin.readline() == "":
        fail("stdin closed after step %s" % step)


def fail(message, code=1):
    emit("error", message=message)
    sys.exit(code)


def generate_stubs(proto_dir, out_dir):
    """Runs grpc_tools.protoc on our proto; returns the generated modules."""
    import grpc_tools
    from grpc_tools import protoc

    # grpc_tools ships the well-known types (google/protobuf/timestamp.proto)
    # in its _proto directory; protoc needs it on the include path.
    well_known = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    os.makedirs(out_dir, exist_ok=True)
    status = protoc.main(
        [
            "grpc_tools.protoc",
            "--proto_path=" + proto_dir,
            "--proto_path=" + well_known,
            "--python_out=" + out_dir,
            "--grpc_python_out=" + out_dir,
            os.path.join(proto_dir, PROTO_FILE),
        ]
    )
    if status != 0:
        fail("grpc_tools.protoc exited with status %d" % status)

    sys.path.insert(0, out_dir)
    from tokenbroker.v1 import token_service_pb2, token_service_pb2_grpc

    generated = sorted(
        os.path.relpath(os.path.join(root, name), out_dir)
        for root, _, names in os.walk(out_dir)
        for name in names
        if name.endswith(".py")
    )
    return token_service_pb2, token_service_pb2_grpc, generated


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addr", required=True, help="host:port of the broker's gRPC listener")
    parser.add_argument("--proto-dir", required=True, help="the repository's proto/ directory")
    parser.add_argument("--out", required=True, help="where to write the generated stubs")
    parser.add_argument("--app", default="demo", help="a configured app id")
    parser.add_argument("--unknown-app", default="no-such-app", help="an app id not configured")
    parser.add_argument("--timeout", type=float, default=10.0, help="deadline in seconds of each call (of the whole stream for WatchToken)")
    args = parser.parse_args()

    try:
        import grpc
        import grpc_tools  # noqa: F401  (checked here so the message below is accurate)
    except ImportError as err:
        emit(
            "missing_deps",
            message="%s cannot import %s: run scripts/install-test-deps.sh"
            % (sys.executable, err.name),
        )
        sys.exit(3)

    pb2, pb2_grpc, generated = generate_stubs(args.proto_dir, args.out)
    emit("stubs", files=generated, grpc_version=grpc.__version__)

    access_token = pb2.TokenKind.Value("TOKEN_KIND_ACCESS_TOKEN")

    def token_fields(token):
        return {
            "app_id": token.app_id,
            "kind": pb2.TokenKind.Name(token.kind),
            "value": token.value,
            "version": token.version,
            "expires_in": token.expires_in,
            "expires_at_ms": token.expires_at.ToMilliseconds(),
            "fetched_at_ms": token.fetched_at.ToMilliseconds(),
            "fingerprint": token.fingerprint,
        }

    def expect_error(step, call, request):
        try:
            response = call(request, timeout=args.timeout)
        except grpc.RpcError as err:
            emit(step, code=err.code().name, details=err.details())
            return
        fail("%s: expected an error, got %s" % (step, response))

    with grpc.insecure_channel(args.addr) as channel:
        grpc.channel_ready_future(channel).result(timeout=args.timeout)
        stub = pb2_grpc.TokenServiceStub(channel)

        got = stub.GetToken(
            pb2.GetTokenRequest(app_id=args.app, kind=access_token), timeout=args.timeout
        )
        emit("get", **token_fields(got.token))

        expect_error(
            "get_unknown_app",
            stub.GetToken,
            pb2.GetTokenRequest(app_id=args.unknown_app, kind=access_token),
        )
        expect_error("get_kind_unset", stub.GetToken, pb2.GetTokenRequest(app_id=args.app))

        def invalidate(step, value):
            response = stub.InvalidateToken(
                pb2.InvalidateTokenRequest(
                    app_id=args.app, kind=access_token, rejected_value=value, errcode=40001
                ),
                timeout=args.timeout,
            )
            emit(
                step,
                refreshed=response.refreshed,
                outcome=pb2.InvalidateOutcome.Name(response.outcome),
                **token_fields(response.token),
            )
            return response

        invalidate("invalidate", got.token.value)
        invalidate("invalidate_stale", got.token.value)

        stream = stub.WatchToken(
            pb2.WatchTokenRequest(app_id=args.app, kind=access_token), timeout=args.timeout
        )

        def next_message(step):
            message = next(stream)
            fields = token_fields(message.token)
            if message.HasField("previous_valid_until"):
                fields["previous_valid_until_ms"] = message.previous_valid_until.ToMilliseconds()
            else:
                fields["previous_valid_until_ms"] = None
            emit(step, **fields)
            return message

        try:
            next_message("watch_first")
            # The test refreshes the token from the Node side when it reads
            # watch_first; the stream delivers the new version.
            from_node = next_message("watch_node")
            invalidate("watch_invalidate", from_node.token.value)
            next_message("watch_python")
        finally:
            stream.cancel()

    emit("done")


if __name__ == "__main__":
    try:
        main()
    except SystemExit:
        raise
    except Exception as err:  # report anything else as one parseable line
        fail("%s: %s" % (type(err).__name__, err))
