"""Field I/O: the I/O map, the process images and the drivers.

The engine knows drivers only through the images (image.py). Drivers run in
the I/O thread's asyncio loop (live) or are stepped by the virtual clock
(offline); they never touch program objects.
"""
