"""
pycalls.py LIB CALLS DEPTH: CALLS back-to-back cudaStreamSynchronize(NULL)
through ctypes from a Python function DEPTH frames deep (the stack every
sampled call carries). Times its own loop: prints one JSON line with the
calling thread's CPU ns per call (time.thread_time_ns) and wall ns per call.
"""
import ctypes
import json
import sys
import time


def hot(rt, calls):
    f = rt.cudaStreamSynchronize
    c0, w0 = time.thread_time_ns(), time.perf_counter_ns()
    for _ in range(calls):
        f(None)
    c1, w1 = time.thread_time_ns(), time.perf_counter_ns()
    return (c1 - c0) / calls, (w1 - w0) / calls


def nest(rt, calls, depth):
    if depth <= 0:
        return hot(rt, calls)
    return nest(rt, calls, depth - 1)


def main():
    lib, calls, depth = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rt = ctypes.CDLL(lib)
    rt.cudaStreamSynchronize.argtypes = [ctypes.c_void_p]
    rt.cudaStreamSynchronize.restype = ctypes.c_int
    rt.cudaStreamSynchronize(None)
    time.sleep(0.5)  # a tracer that finds the library by rescanning (not parked at dlopen) attaches before the timed loop
    cpu, wall = nest(rt, calls, depth)
    print(json.dumps({"pycalls": True, "python": sys.version.split()[0], "calls": calls, "depth": depth,
                      "cpu_ns_per_call": cpu, "wall_ns_per_call": wall}), flush=True)


if __name__ == "__main__":
    main()
