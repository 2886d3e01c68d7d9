"""Private helpers shared by every lowrank module: validation, random numbers,
backends (numpy | torch), optional imports, progress reporting and file I/O."""
