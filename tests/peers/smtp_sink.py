"""A real SMTP server for tests: aiosmtpd on 127.0.0.1, port 0.

Prints `PORT <n>` once listening, then for each message received `MAIL FROM`, `RCPT TO`, its
lines prefixed with `DATA `, and `END`. Exits when its standard input closes.
"""
import asyncio
import sys

from aiosmtpd.smtp import SMTP


class Printer:
    async def handle_DATA(self, server, session, envelope):
        content = envelope.content
        if isinstance(content, bytes):
            content = content.decode("utf-8", errors="replace")
        print("MAIL FROM " + envelope.mail_from, flush=True)
        print("RCPT TO " + ",".join(envelope.rcpt_tos), flush=True)
        for line in content.splitlines():
            print("DATA " + line, flush=True)
        print("END", flush=True)
        return "250 OK"


async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(Printer()), "127.0.0.1", 0)
    print("PORT", server.sockets[0].getsockname()[1], flush=True)
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()


asyncio.run(main())
