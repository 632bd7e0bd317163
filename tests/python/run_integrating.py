"""Runs the Python integration of docs/integrating.md with the official MCP SDK's client.

Usage: python3 run_integrating.py SNIPPET.py MODE USER [no-elicitation]
  SNIPPET.py  the doc's Python block, as tests/it/integrating.rs extracted it
  MODE        "legacy" (2025-11-25, initialize) or "2026-07-28"
  USER        the authenticated user (in process there is no HTTP request, so no bearer token
              for `current_user()` to read: the test names the user instead)
  no-elicitation  the client declares no elicitation capability (no callback)

Talks to the test in JSON lines: prints {"elicitation": url} when the client is asked to
open a URL, then reads one line from stdin, the user's answer ("accept", "decline" or
"cancel"); at the end prints {"text": ..., "is_error": ...}, the tool's answer, or
{"error": code, "message": ...}.
"""

import asyncio
import importlib.util
import json
import sys

from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_types import ElicitResult

snippet_path, mode, user = sys.argv[1:4]
declares_elicitation = sys.argv[4:5] != ["no-elicitation"]
spec = importlib.util.spec_from_file_location("integrating", snippet_path)
integrating = importlib.util.module_from_spec(spec)
spec.loader.exec_module(integrating)
integrating.current_user = lambda: user


def say(message: dict) -> None:
    print(json.dumps(message), flush=True)


async def on_elicitation(_context, params):
    say({"elicitation": params.url, "elicitation_id": params.elicitation_id})
    answer = (await asyncio.to_thread(sys.stdin.readline)).strip()
    return ElicitResult(action=answer)


async def main() -> None:
    callback = on_elicitation if declares_elicitation else None
    async with Client(integrating.mcp, mode=mode, elicitation_callback=callback) as client:
        try:
            result = await client.call_tool("report", {})
        except MCPError as error:
            say({"error": error.code, "message": error.message, "data": error.data})
            return
        say({"text": result.content[0].text, "is_error": bool(result.is_error)})


asyncio.run(main())
