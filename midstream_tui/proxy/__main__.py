"""``python -m midstream_tui.proxy FD``: the proxy's relay process (see ``relay.py``), started by ``ProxyProcess``."""

from .relay import main

main()
