"""A TCP peer that resets the connection, for the knock and chat tests.

Deno cannot make a connection end with a reset (RST) on purpose: its close
always ends with a FIN, which the other side reads as a plain end of data.
Here SO_LINGER with a timeout of 0 makes close() send a RST instead.

    python3 reset_peer.py client PORT TEXT     connect to 127.0.0.1:PORT,
                                               send TEXT, reset once stdin
                                               ends (after the server has
                                               taken the connection: a reset
                                               before that only cancels it)
    python3 reset_peer.py server [ANSWER ...] [--at-once]
                                               listen on 127.0.0.1, print the
                                               port, take one connection;
                                               read a line and send each
                                               ANSWER, read one more line
                                               (--at-once: no more line),
                                               reset; print each line read
"""

import socket
import struct
import sys


def reset(conn):
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def lines(conn):
    """The lines conn sends (recv, not makefile(), which would keep it open)."""
    data = b""
    while True:
        while b"\n" not in data:
            more = conn.recv(4096)
            if not more:
                return
            data += more
        line, data = data.split(b"\n", 1)
        yield line.decode().rstrip("\r")


if sys.argv[1] == "client":
    conn = socket.create_connection(("127.0.0.1", int(sys.argv[2])))
    conn.sendall(sys.argv[3].encode())
    sys.stdin.read()
    reset(conn)
else:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    print(server.getsockname()[1], flush=True)
    conn, _ = server.accept()
    incoming = lines(conn)
    answers = sys.argv[2:]
    at_once = answers[-1:] == ["--at-once"]
    for answer in answers[:-1] if at_once else answers + [None]:
        print(next(incoming, "(end of data)"), flush=True)
        if answer is not None:
            conn.sendall(answer.encode() + b"\n")
    reset(conn)
