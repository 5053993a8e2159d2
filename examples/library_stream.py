"""Feed MidStream from code that already has a token stream in hand.

Any async iterator of text chunks works (an OpenAI client's stream, a socket,
a file). This one is a stand-in that falls into a repetition loop after a few
dozen words, and the example stops it mid-stream as soon as MidStream sees
the loop, then prints what MidStream measured.

    python examples/library_stream.py
"""

import asyncio
import json

from midstream_tui import Hub


async def token_stream():
    """A model that answers, then gets stuck repeating itself."""
    answer = ("Tides follow the moon but the exact height of the water also depends on the "
              "shape of the coast and the wind that day").split()
    stuck = "and the water rises and falls".split()
    await asyncio.sleep(0.25)  # time to first token
    for word in answer:
        yield " " + word
        await asyncio.sleep(0.01)
    for i in range(400):
        yield " " + stuck[i % len(stuck)]
        await asyncio.sleep(0.01)


async def main() -> None:
    hub = Hub()
    hub.start_request("my-llm")
    words = 0
    async for chunk in token_stream():
        hub.push_text("my-llm", chunk, tokens=1)
        words += 1
        if words % 10 == 0:
            snap = hub.analyze()["my-llm"]  # like getState(): the current analysis
            loops = [p for p in snap.patterns if p.kind == "loop"]
            if loops:
                print(f"stopping mid-stream after {words} chunks: {loops[0].message}")
                break
    hub.finish_request("my-llm")
    snap = hub.analyze()["my-llm"]
    keep = ("tokens", "ttft_ms", "itl_p50_ms", "itl_p99_ms", "tokens_per_s", "rep4", "loop_words")
    print(json.dumps({k: round(snap.metrics[k], 2) for k in keep}))


if __name__ == "__main__":
    asyncio.run(main())
