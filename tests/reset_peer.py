"""A TCP peer that resets the connection, for tests/tcp_knock_test.ts.

Deno cannot make a connection end with a reset (RST) on purpose: its close
always ends with a FIN, which the other side reads as a plain end of data.
Here SO_LINGER with a timeout of 0 makes close() send a RST instead.

    python3 reset_peer.py client PORT TEXT   connect to 127.0.0.1:PORT,
                                             send TEXT, reset once stdin
                                             ends (after the server has
                                             taken the connection: a reset
                                             before that only cancels it)
    python3 reset_peer.py server             listen on 127.0.0.1, print the
                                             port, take one connection, read
                                             one line, reset
"""

import socket
import struct
import sys


def reset(conn):
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


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
    got = b""
    while b"\n" not in got:  # recv, not makefile(), which would keep it open
        data = conn.recv(4096)
        if not data:
            break
        got += data
    reset(conn)
