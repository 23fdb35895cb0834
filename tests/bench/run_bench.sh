#!/usr/bin/env bash
# Runs the table benchmarks and prints medians of 5 repetitions, with the
# ratios the issue names (gather vs memcpy in the same run, verify GB/s).
#   tests/bench/run_bench.sh [BUILD_DIR]     (default: build)
# Needs ~2.5 GB free in $EMBSTORE_BENCH_DIR (default /tmp) for the table.
set -euo pipefail
BUILD=${1:-build}
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT
# The sharded-table benchmarks are shard_bench.py's (its own tables and rounds).
"$BUILD/tests/bench/table_bench" --benchmark_repetitions=5 --benchmark_report_aggregates_only=true \
  --benchmark_filter='-^BM_(OpenLookupTable|OpenAndFirstLookup|FirstRowInShard|LookupOneRow|ReadManifestJson)' \
  --benchmark_min_time=0.3 --benchmark_out="$OUT" --benchmark_out_format=json >/dev/null
/usr/bin/python3 - "$OUT" <<'PY'
import json, sys
runs = json.load(open(sys.argv[1]))
ctx = runs["context"]
med = {b["run_name"]: b for b in runs["benchmarks"] if b.get("aggregate_name") == "median"}
def ns(name): return med[name]["real_time"] * {"ns": 1, "us": 1e3, "ms": 1e6}[med[name]["time_unit"]]
def gbs(name): return med[name]["bytes_per_second"] / 1e9
print(f"machine: {ctx['num_cpus']} cpus @ {ctx['mhz_per_cpu']} MHz, {ctx.get('host_name', '')}; medians of 5")
print(f"open 50,257 x 12,288 (2.47 GB)   {ns('BM_OpenBig') / 1e3:8.1f} us")
print(f"open 6 x 4 (4 KB)                {ns('BM_OpenSmall') / 1e3:8.1f} us")
print(f"row(id) lookup                   {ns('BM_RowLookup'):8.2f} ns")
print(f"row(id) lookup + first float     {ns('BM_RowLookupAndTouch'):8.2f} ns")
g, m = gbs("BM_Gather"), gbs("BM_MemcpyBaseline")
print(f"gather 256 random rows           {g:8.2f} GB/s")
print(f"memcpy of the same bytes         {m:8.2f} GB/s   gather/memcpy = {g / m:.0%}")
print(f"verify, 1 thread                 {gbs('BM_Verify/1/real_time'):8.2f} GB/s")
print(f"verify, 2 threads                {gbs('BM_Verify/2/real_time'):8.2f} GB/s")
PY
