"""`curation-assets` (the same ``curation_assets.cli:main``) with PyAV decoding counted.

    python benchmarks/graph_runner.py run --input ... --data-dir ... --model-profile tiny

When $BENCH_DECODE_LOG names a file, every ``av.open`` for reading is wrapped: on close,
one JSON line records the pid, the path, the calling function, the number of frames
that container decoded and the seconds spent waiting on the decoder (inside its next()). That is how the benchmark checks "each video decoded once"
without touching the product. Module-level patching also reaches the spawned shard
workers (multiprocessing re-imports this file as ``__mp_main__``). The wrapper costs a
Python-level generator step and two clock reads per decoded frame (~1 us), nothing measurable.
"""

from __future__ import annotations

import json
import os
import sys
import time

_LOG = os.environ.get("BENCH_DECODE_LOG")


def _install() -> None:
    import av

    real_open = av.open
    if getattr(real_open, "_bench_counted", False):
        return

    class CountedContainer:
        def __init__(self, container, path: str, caller: str):
            self._container, self._path, self._caller = container, path, caller
            self._frames, self._logged, self._decode_s = 0, False, 0.0

        def decode(self, *args, **kwargs):
            frames = iter(self._container.decode(*args, **kwargs))
            while True:
                started = time.perf_counter()
                try:
                    frame = next(frames)
                except StopIteration:
                    return
                finally:
                    self._decode_s += time.perf_counter() - started
                self._frames += 1
                yield frame

        def close(self):
            self._log()
            return self._container.close()

        def _log(self):
            if self._logged:
                return
            self._logged = True
            try:
                with open(_LOG, "a", encoding="utf-8") as f:
                    f.write(json.dumps({"pid": os.getpid(), "path": self._path, "caller": self._caller,
                                        "frames": self._frames, "decode_s": self._decode_s}) + "\n")
            except OSError:
                pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.close()
            return False

        def __getattr__(self, name):
            return getattr(self._container, name)

    def counted_open(file, *args, **kwargs):
        container = real_open(file, *args, **kwargs)
        mode = kwargs.get("mode", args[0] if args else "r")
        if mode not in (None, "r") or not isinstance(file, (str, os.PathLike)):
            return container
        caller = sys._getframe(1)
        where = f"{caller.f_globals.get('__name__', '?')}.{caller.f_code.co_name}"
        return CountedContainer(container, os.fspath(file), where)

    counted_open._bench_counted = True
    av.open = counted_open


if _LOG:
    _install()


if __name__ == "__main__":
    from curation_assets.cli import main

    sys.exit(main(sys.argv[1:]))
