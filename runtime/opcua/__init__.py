"""The OPC UA server for SCADA (issue 5).

Two processes. The runtime process keeps only the bridge (bridge.py): after
each scan it snapshots the exposed values, diffs them and ships the changes
over a socket; it applies client writes through Engine.queue_write. The
asyncua server runs in a child process (server.py) so that its Python work
never holds the runtime's GIL. space.py turns the program into a plain-data
description of the address space that the child builds its nodes from.
"""
