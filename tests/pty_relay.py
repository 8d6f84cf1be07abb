"""Run a command on a pseudo-terminal, for tests/chat_window_test.ts.

Deno cannot open a pseudo-terminal itself, so this relays: bytes on stdin
are typed into the terminal, and what the command writes to the terminal
(escape sequences included) comes out on stdout unchanged. Exits with the
command's exit code; on SIGTERM, or after LIMIT seconds, kills the command.

    python3 tests/pty_relay.py COLS ROWS LIMIT command args...
"""

import fcntl
import os
import pty
import select
import signal
import struct
import sys
import termios


def main():
    cols, rows, limit = (int(arg) for arg in sys.argv[1:4])
    command = sys.argv[4:]
    pid, terminal = pty.fork()
    if pid == 0:  # the command, on the terminal's other end
        size = struct.pack("HHHH", rows, cols, 0, 0)
        fcntl.ioctl(0, termios.TIOCSWINSZ, size)
        os.execvp(command[0], command)

    def end(*_):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:  # gone already
            pass
        sys.exit(124)

    signal.signal(signal.SIGTERM, end)
    signal.signal(signal.SIGALRM, end)
    signal.alarm(limit)
    try:
        relay(terminal)
    finally:
        signal.alarm(0)
    _, status = os.waitpid(pid, 0)
    sys.exit(os.waitstatus_to_exitcode(status))


def relay(terminal):
    sources = [terminal, sys.stdin.fileno()]
    while True:
        for source in select.select(sources, [], [])[0]:
            try:
                data = os.read(source, 65536)
            except OSError:  # EIO: the command closed the terminal
                data = b""
            if source == terminal:
                if not data:
                    return
                os.write(sys.stdout.fileno(), data)
            elif data:
                os.write(terminal, data)
            else:  # end of stdin: keep relaying output
                sources.remove(source)


if __name__ == "__main__":
    main()
