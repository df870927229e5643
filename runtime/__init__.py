"""The gridplc runtime: engine, scheduling, tags, CLI. Knows the language only
through plc_lang's compiled program; knows drivers only through process images."""
