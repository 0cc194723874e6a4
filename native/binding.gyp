{
  "targets": [
    {
      "target_name": "causeway",
      "sources": ["addon.c", "log.c", "handles.c", "args.c", "object.c", "attach.c", "drain.c", "maps.c", "calibrate.c", "affinity.c"],
      "cflags_c": ["-std=gnu11", "-O2", "-fvisibility=hidden", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Werror"],
      "defines": ["NAPI_VERSION=8"],
      "libraries": ["-lbpf", "-lelf", "-lz", "-lpthread"]
    },
    {
      "target_name": "causeway-guardian",
      "type": "executable",
      "sources": ["guardian.c"],
      "cflags_c": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror"]
    }
  ]
}
