"""A TCP port that answers no SYN, for tests/tcp_connect_timeout_test.ts.

It listens on 127.0.0.1 with a backlog of 0 and fills its accept queue with
connections it never accepts: the kernel then drops every further SYN, as a
firewall that drops packets (or a computer that is off) would, and a client's
connect waits. Prints the port, then runs until its stdin is closed.
"""

import socket
import sys

server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen(0)
port = server.getsockname()[1]

fillers = []
for _ in range(2):  # a backlog of 0 still queues one; two make sure
    filler = socket.socket()
    filler.setblocking(False)
    filler.connect_ex(("127.0.0.1", port))
    fillers.append(filler)

print(port, flush=True)
sys.stdin.read()
