"""`make bench`: every benchmark, each printing its table of measured figures."""

from __future__ import annotations

from bench import bench_service, bench_transforms

if __name__ == "__main__":
    print("== transform engine (python -m bench.bench_transforms)")
    bench_transforms.main()
    print("\n== running service (python -m bench.bench_service)")
    bench_service.main()
