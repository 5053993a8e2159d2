"""Open the dashboard on a hub that your own code feeds.

    python examples/dashboard_on_hub.py      (q quits)
"""

import asyncio
import math

from midstream_tui import Hub
from midstream_tui.tui.app import MidStreamApp


async def feed(hub: Hub) -> None:
    """Your producer: here, a sensor-like reading pushed as text every 50 ms."""
    k = 0
    hub.start_request("sensor")
    while True:
        value = math.sin(k / 7) + 0.3 * math.sin(k / 2.3)
        hub.push_text("sensor", f" {value:+.2f}", tokens=1)
        k += 1
        await asyncio.sleep(0.05)


class FedDashboard(MidStreamApp):
    async def on_mount(self) -> None:
        await super().on_mount()
        self.run_worker(feed(self.hub), exclusive=True, group="producer")


def make_app() -> MidStreamApp:
    return FedDashboard(Hub())


if __name__ == "__main__":
    make_app().run()
