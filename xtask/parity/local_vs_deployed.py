"""Independent real clients against the example binaries: what API Gateway does, locally.

Python's `websockets` and boto3 (pinned in xtask/src/parity.rs) against `echo`, `chat`
and `telemetry` as `cargo run -p …` starts them, each on a free loopback port:

- a binary frame from a client closes its connection with 1003 ("Binary media types for
  WebSocket APIs" in API Gateway's developer guide);
- a WebSocket upgrade on a path that is not the stage is refused at the handshake (403);
- the stage path `/local` works, and a bystander connected all along keeps working;
- `@connections` (started with --require-signature, so loopback is checked as any caller
  on the LAN is): boto3's `apigatewaymanagementapi` client signing with the key pair the
  binary was given passes the SigV4 check (a post reaches a client; an unknown id is
  GoneException, 410), a wrong secret is 403 InvalidSignatureException, an unsigned call
  403 MissingAuthenticationTokenException.

Usage: python local_vs_deployed.py ECHO_BINARY CHAT_BINARY TELEMETRY_BINARY
Exits 0 when every check held, 1 with the failed check otherwise.
"""

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import boto3
import botocore.config
import botocore.exceptions
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

WAIT = 10.0
ACCESS_KEY_ID = "AKIDPARITYCHECK0001"
SECRET = "parity-check-secret-key-0123456789abcdef"

# Environment that would change what the binaries do (Lambda mode, DynamoDB, auth).
SCRUBBED = [
    "AWS_LAMBDA_RUNTIME_API",
    "WSGW_DYNAMODB_ENDPOINT",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_DYNAMODB",
    "AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI",
    "WSGW_LISTEN",
    "WSGW_JWT_SECRET",
    "WSGW_JWT_PUBLIC_KEY_FILE",
    "TELEMETRY_DEVICE_TOKEN",
    "TELEMETRY_DEVICE_KEYS",
    "TELEMETRY_DASHBOARD_KEYS",
    "WSGW_LOCAL_ACCESS_KEY_ID",
    "WSGW_LOCAL_SECRET_ACCESS_KEY",
    "WSGW_REQUIRE_SIGNATURE",
]


class Example:
    """How a client of one example connects and checks that it is served."""

    def __init__(self, name, query, request, answered, reveals_id):
        self.name = name
        self.query = query
        self.request = request
        self.answered = answered
        # A message whose answer names the caller's connection id, if the protocol has one.
        self.reveals_id = reveals_id


EXAMPLES = {
    "echo": Example(
        "echo",
        "",
        {"action": "message", "message": "still here"},
        lambda answer: answer == {"type": "message", "message": "still here"},
        ({"action": "whoami"}, lambda answer: answer.get("connection_id")),
    ),
    "chat": Example(
        "chat",
        "?session_id=s-parity&name=parity",
        {"action": "heartbeat"},
        lambda answer: answer == {"type": "heartbeat"},
        # Chat messages carry no connection id (issue 20): boto3's post is checked on echo.
        None,
    ),
    "telemetry": Example(
        "telemetry",
        "?role=client",
        {"action": "reboot"},
        lambda answer: answer.get("code") == "unknown_action",
        None,
    ),
}


def check(condition, what):
    if not condition:
        raise AssertionError(what)
    print(f"ok: {what}", flush=True)


class Running:
    """The binary on a free loopback port, stopped with SIGTERM at the end."""

    def __init__(self, binary):
        env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
        self.process = subprocess.Popen(
            [
                binary,
                "--listen",
                "127.0.0.1:0",
                "--access-key-id",
                ACCESS_KEY_ID,
                "--secret-access-key",
                SECRET,
                "--require-signature",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            text=True,
        )
        line = self.process.stdout.readline()
        found = re.search(r"ws://(127\.0\.0\.1:\d+)", line)
        if not found:
            self.stop()
            raise AssertionError(f"{binary} printed no ws:// address: {line!r}")
        self.addr = found.group(1)

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=WAIT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


async def next_json(ws):
    return json.loads(await asyncio.wait_for(ws.recv(), WAIT))


async def served(ws, example):
    await ws.send(json.dumps(example.request))
    return example.answered(await next_json(ws))


async def connection_id(ws, example):
    request, read = example.reveals_id
    await ws.send(json.dumps(request))
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        found = read(await next_json(ws))
        if found:
            return found
    raise AssertionError(f"{example.name}: no connection id in the answers")


def management(addr, secret):
    return boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=f"http://{addr}/local",
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=secret,
        config=botocore.config.Config(retries={"max_attempts": 1}),
    )


def refused_with(call):
    """The HTTP status and AWS error code of a call that must fail."""
    try:
        call()
    except botocore.exceptions.ClientError as error:
        return (
            error.response["ResponseMetadata"]["HTTPStatusCode"],
            error.response["Error"]["Code"],
        )
    raise AssertionError("the call succeeded")


async def check_example(example, binary):
    running = Running(binary)
    stage_url = f"ws://{running.addr}/local{example.query}"
    try:
        async with connect(stage_url, open_timeout=WAIT) as bystander:
            check(await served(bystander, example), f"{example.name}: the stage path /local serves a client")

            # A binary frame: API Gateway closes that connection with 1003.
            async with connect(stage_url, open_timeout=WAIT) as sender:
                await sender.send(b'{"action":"whoami"}')
                code = None
                try:
                    while True:
                        await asyncio.wait_for(sender.recv(), WAIT)
                except ConnectionClosed as closed:
                    code = closed.rcvd.code if closed.rcvd else None
                check(code == 1003, f"{example.name}: a binary frame closes its connection with 1003 (got {code})")

            # Another stage: refused at the handshake, as API Gateway refuses it.
            for path in ["/production", "/dev"]:
                status = None
                try:
                    async with connect(f"ws://{running.addr}{path}{example.query}", open_timeout=WAIT):
                        pass
                except InvalidStatus as refused:
                    status = refused.response.status_code
                check(status == 403, f"{example.name}: the wrong stage {path} is refused at the handshake with 403 (got {status})")

            # @connections, checked as AWS checks it.
            signed = management(running.addr, SECRET)
            status, code = refused_with(lambda: signed.post_to_connection(ConnectionId="nobody=", Data=b"x"))
            check(
                (status, code) == (410, "GoneException"),
                f"{example.name}: boto3 signing with the gateway's key passes the SigV4 check (unknown id: {status} {code})",
            )
            forged = management(running.addr, "not-the-secret")
            status, code = refused_with(lambda: forged.post_to_connection(ConnectionId="nobody=", Data=b"x"))
            check(
                (status, code) == (403, "InvalidSignatureException"),
                f"{example.name}: boto3 with a wrong secret is refused ({status} {code})",
            )
            request = urllib.request.Request(
                f"http://{running.addr}/local/@connections/nobody=", data=b"forged", method="POST"
            )
            try:
                urllib.request.urlopen(request, timeout=WAIT)
                unsigned = (200, None)
            except urllib.error.HTTPError as error:
                unsigned = (error.code, error.headers.get("x-amzn-ErrorType"))
            check(
                unsigned == (403, "MissingAuthenticationTokenException"),
                f"{example.name}: an unsigned @connections call is refused ({unsigned})",
            )
            if example.reveals_id:
                own_id = await connection_id(bystander, example)
                signed.post_to_connection(ConnectionId=own_id, Data=b'{"posted":"by boto3"}')
                posted = None
                deadline = time.monotonic() + WAIT
                while posted != {"posted": "by boto3"} and time.monotonic() < deadline:
                    posted = await next_json(bystander)
                check(posted == {"posted": "by boto3"}, f"{example.name}: boto3's signed post reaches the client")

            check(await served(bystander, example), f"{example.name}: the bystander connected all along keeps working")
    finally:
        running.stop()


async def main(binaries):
    for name, binary in zip(["echo", "chat", "telemetry"], binaries):
        await check_example(EXAMPLES[name], binary)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    try:
        asyncio.run(main(sys.argv[1:]))
    except AssertionError as failure:
        print(f"FAILED: {failure}", file=sys.stderr)
        sys.exit(1)
    print("every check held: local behaves as deployed for these clients")
