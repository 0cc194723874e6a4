// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * loader.bpf.c: the dynamic loader mapped new objects.
 *
 * A uprobe on `_dl_debug_state` of /lib64/ld-linux-x86-64.so.2: glibc's
 * loader calls it twice at start-up (before and after the initial libraries
 * are mapped) and twice per dlopen (GUIDE §8). For traced tgids (or every
 * process when cw_trace_all) it emits struct cw_loader into rb_life and, when
 * cw_stop_on_load is set, parks the process with SIGSTOP (bpf_send_signal
 * signals the whole thread group of `current`): the new library is mapped but
 * none of its code has run. The record of a parked process wakes user space
 * (BPF_RB_FORCE_WAKEUP: it watches rb_life on its event loop), which reads
 * /proc/PID/maps, attaches, and sends SIGCONT.
 *
 * Attached by src/probe/host.ts through a uprobe_multi link with one offset
 * (resolved from the ELF), falling back to a classic uprobe: SEC("uprobe")
 * carries no target so the same program serves both.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "maps.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define CW_SIGSTOP 19

const volatile bool cw_stop_on_load = false;

/*
 * System-wide mode (cw_park_new_cuda): a process whose loader just mapped a
 * CUDA library (libcuda.so*, libcudart.so*, libcudart-<hash>.so*, and
 * libcublas.so*, libcublasLt.so*, libnccl.so*, libnvToolsExt.so*,
 * libtorch_cuda.so, libcauseway-nvtx.so: what run/attach.ts attaches to) is parked
 * at that rendezvous like an explicit target, so user space attaches to a
 * copy it has never seen (a new virtualenv) before the first call.
 *
 * How the new objects are found: the loader's r_debug (`_r_debug`, at a fixed
 * distance cw_r_debug_delta from `_dl_debug_state` in ld.so, resolved from
 * the ELF by user space) lists every loaded object (link_map: l_name at +8,
 * l_next at +24; r_debug: r_map at +8, r_state at +24). At each RT_CONSISTENT
 * hit the walk starts after the last entry this tgid already checked
 * (cw_lm_seen), so each object's name is read once per process. kprobe/fentry
 * are not available here (EPERM), so the mmap itself cannot be watched.
 *
 * The walk of the objects a program starts with is most of what a process
 * that never loads CUDA pays (reads of cold user memory: ~20 us for /bin/true
 * here, BENCHMARKS.md §7), and it finds the same answer for every run of the
 * same program. So a clean result is remembered per program (cw_exe_clean:
 * executable inode + device + size of the environment, which LD_PRELOAD and
 * LD_LIBRARY_PATH change, + the number of mappings at that moment) for
 * cw_exe_clean_ttl_ns, and a new process of that program skips its start-up
 * walk. Its later rendezvous (dlopen) walk the whole list from the head
 * instead of from a remembered tail, so nothing the process adds later is
 * skipped. "Start-up" is a rendezvous with no cw_lm_seen entry for this
 * loader instance; a long-lived process whose entry the LRU evicted looks the
 * same, but by then it has more mappings than its program has at start-up
 * (the library its loader just mapped adds some), so the key differs and it
 * is walked. What is given up: a run of the same program, with an
 * environment of the same size, that preloads a CUDA library from a path
 * never seen before in place of another preload of the same mapping count,
 * within the TTL of a clean run, is attached by the rescan (late) instead of
 * parked.
 */
const volatile bool cw_park_new_cuda = false;
const volatile __u64 cw_r_debug_delta = 0;
/* how long a program's clean start-up walk is trusted (0: never) */
const volatile __u64 cw_exe_clean_ttl_ns = 1000000000;

struct cw_lm_seen {
	__u64 r_debug;  /* which loader instance (exec changes it) */
	__u64 head;     /* r_map when recorded */
	__u64 tail;     /* last link_map entry checked (0: check from the head) */
};

struct cw_exe_key {
	__u64 ino;
	__u32 dev;
	__u32 env_len;
	__u32 map_count;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, struct cw_exe_key);
	__type(value, __u64); /* when its start-up objects were found to hold no CUDA library */
} cw_exe_clean SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, struct cw_lm_seen);
} cw_lm_seen SEC(".maps");

/*
 * Parked tgids -> when their thread group started (ns since boot: what
 * /proc/PID/stat field 22 shows in clock ticks, so a reused pid is never taken
 * for the parked one). Written at every park (the ld.so rendezvous and the
 * mmap/mprotect watch alike); the tracer's guardian (native/guardian.c) holds
 * this map's fd and, when the tracer dies (kill -9, OOM) or has detached,
 * resumes each entry whose process is still stopped, even a park whose record
 * the tracer never read. Entries are not deleted on resume (a delete could race
 * the next park of the same process); a process that runs is left alone. LRU:
 * when full, the oldest entry (long resumed, most likely) goes.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
} cw_parked SEC(".maps");

/* Park the current process (SIGSTOP) and record it for the guardian; true when the signal was sent. */
static __always_inline bool cw_park(__u32 tgid)
{
	if (bpf_send_signal(CW_SIGSTOP))
		return false;
	__u64 start = BPF_CORE_READ(bpf_get_current_task_btf(), group_leader, start_boottime);
	bpf_map_update_elem(&cw_parked, &tgid, &start, BPF_ANY);
	return true;
}

#define CW_NAME_MAX 128
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, char[2 * CW_NAME_MAX]);
} cw_name_buf SEC(".maps");

struct cw_walk {
	__u64 lm;    /* next entry to check */
	__u64 last;  /* last entry checked */
	__u32 hit;
};

static __always_inline __u64 cw_user_u64_at(__u64 p)
{
	__u64 v = 0;
	bpf_probe_read_user(&v, sizeof(v), (const void *)p);
	return v;
}

/* Is the file name at b (a basename: no '/') a library the tracer attaches to (CUDA, PyTorch's CUDA part, Causeway's NVTX injection)? b must have 17 readable bytes. */
static __always_inline bool cw_cuda_base(const char *b)
{
	if (b[0] != 'l' || b[1] != 'i' || b[2] != 'b')
		return false;
	/* libnccl.so*: collectives (torch.distributed loads them on first use) */
	if (b[3] == 'n' && b[4] == 'c' && b[5] == 'c' && b[6] == 'l')
		return b[7] == '.';
	/* libnvToolsExt.so*: NVTX v2 ranges, loaded by annotated libraries on first use */
	if (b[3] == 'n' && b[4] == 'v' && b[5] == 'T' && b[6] == 'o' && b[7] == 'o' && b[8] == 'l' && b[9] == 's' &&
	    b[10] == 'E' && b[11] == 'x' && b[12] == 't')
		return b[13] == '.';
	/* libtorch_cuda.so: PyTorch's CUDA code (builds that link the CUDA runtime into it statically) */
	if (b[3] == 't' && b[4] == 'o' && b[5] == 'r' && b[6] == 'c' && b[7] == 'h' && b[8] == '_' && b[9] == 'c' && b[10] == 'u' &&
	    b[11] == 'd' && b[12] == 'a')
		return b[13] == '.';
	/* libcauseway-nvtx.so: Causeway's NVTX3 injection library, dlopened at a traced command's first NVTX call */
	if (b[3] == 'c' && b[4] == 'a' && b[5] == 'u' && b[6] == 's' && b[7] == 'e' && b[8] == 'w' && b[9] == 'a' && b[10] == 'y' &&
	    b[11] == '-' && b[12] == 'n' && b[13] == 'v' && b[14] == 't' && b[15] == 'x')
		return b[16] == '.';
	if (b[3] != 'c' || b[4] != 'u')
		return false;
	/* libcublas.so*, libcublasLt.so*: GEMM libraries a framework may dlopen late */
	if (b[5] == 'b' && b[6] == 'l' && b[7] == 'a' && b[8] == 's')
		return b[9] == '.' || (b[9] == 'L' && b[10] == 't' && b[11] == '.');
	if (b[5] != 'd' || b[6] != 'a')
		return false;
	return b[7] == '.' || (b[7] == 'r' && b[8] == 't' && (b[9] == '.' || b[9] == '-'));
}

/*
 * Is the basename of the path in buf (n bytes incl. NUL) a CUDA library?
 * Scans back from the end for the last '/' (basenames of interest are short)
 * and returns at the first one: no state carried across iterations, so the
 * verifier's walk of the loop stays linear.
 */
static __always_inline bool cw_cuda_name(const char *buf, long n)
{
	for (long k = 0; k < 48; k++) {
		long p = n - 2 - k;  /* n - 1 is the NUL */
		if (p < 0)
			break;
		if (buf[p & (CW_NAME_MAX - 1)] != '/')
			continue;
		return cw_cuda_base(buf + ((p + 1) & (CW_NAME_MAX - 1)));
	}
	return false;
}

static long cw_walk_one(__u64 i, void *vctx)
{
	struct cw_walk *w = vctx;
	__u32 zero = 0;
	if (!w->lm)
		return 1;
	char *buf = bpf_map_lookup_elem(&cw_name_buf, &zero);
	if (!buf)
		return 1;
	__u64 name = cw_user_u64_at(w->lm + 8);
	if (name) {
		long n = bpf_probe_read_user_str(buf, CW_NAME_MAX, (const void *)name);
		if (n > 0 && cw_cuda_name(buf, n))
			w->hit = 1;
	}
	w->last = w->lm;
	w->lm = cw_user_u64_at(w->lm + 24);
	return 0;
}

/* The program this process runs, as cw_exe_clean keys it; false when unreadable. */
static __always_inline bool cw_exe_key_of(struct cw_exe_key *k)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct mm_struct *mm = BPF_CORE_READ(t, mm);
	struct inode *ino;

	if (!mm)
		return false;
	ino = BPF_CORE_READ(mm, exe_file, f_inode);
	if (!ino)
		return false;
	k->ino = BPF_CORE_READ(ino, i_ino);
	k->dev = BPF_CORE_READ(ino, i_sb, s_dev);
	k->env_len = BPF_CORE_READ(mm, env_end) - BPF_CORE_READ(mm, env_start);
	k->map_count = BPF_CORE_READ(mm, map_count);
	k->pad = 0;
	return k->ino != 0;
}

/* Did this loader rendezvous complete the mapping of a CUDA library? */
static __always_inline bool cw_mapped_cuda(struct pt_regs *ctx, __u32 tgid)
{
	__u64 ip = bpf_get_func_ip(ctx);
	if (!ip || !cw_r_debug_delta)
		return false;
	__u64 rd = ip + cw_r_debug_delta;
	__u32 state = 1;
	bpf_probe_read_user(&state, sizeof(state), (const void *)(rd + 24));
	if (state != 0 /* RT_CONSISTENT: the objects are mapped, none has run */)
		return false;
	__u64 head = cw_user_u64_at(rd + 8);
	struct cw_walk w = { .lm = head };
	struct cw_lm_seen *seen = bpf_map_lookup_elem(&cw_lm_seen, &tgid);
	struct cw_exe_key key = {};
	bool startup = !seen || seen->r_debug != rd, keyed = false;
	__u64 now = 0;

	if (!startup && seen->head == head && seen->tail)
		w.lm = cw_user_u64_at(seen->tail + 24);
	if (!w.lm)
		return false;
	if (startup && cw_exe_clean_ttl_ns && cw_exe_key_of(&key)) {
		/* this process's first look at its objects: does the program start clean? */
		__u64 *clean = bpf_map_lookup_elem(&cw_exe_clean, &key);
		now = bpf_ktime_get_ns();
		keyed = true;
		if (clean && now - *clean < cw_exe_clean_ttl_ns) {
			struct cw_lm_seen v = { .r_debug = rd, .head = head, .tail = 0 };
			bpf_map_update_elem(&cw_lm_seen, &tgid, &v, BPF_ANY);
			return false;
		}
	}
	bpf_loop(512, cw_walk_one, &w, 0);
	struct cw_lm_seen v = { .r_debug = rd, .head = head, .tail = w.last };
	bpf_map_update_elem(&cw_lm_seen, &tgid, &v, BPF_ANY);
	if (keyed && !w.hit && !w.lm) /* the whole list was checked and held no CUDA library */
		bpf_map_update_elem(&cw_exe_clean, &key, &now, BPF_ANY);
	return w.hit;
}

SEC("uprobe")
int BPF_KPROBE(cw_dl_debug_state) /* BPF_UPROBE is libbpf >= 1.2; same thing */
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	struct cw_loader *e;
	bool stop;

	if (tgid == cw_self_tgid)
		return 0;
	/* system-wide: a process whose loader just mapped a CUDA library is parked */
	bool fresh = cw_park_new_cuda && cw_mapped_cuda(ctx, tgid);
	if (!fresh && (cw_park_new_cuda ? !cw_is_traced(tgid) : (!cw_trace_all && !cw_is_traced(tgid))))
		return 0;
	/* park even when the ring is full: attaching matters more than the record */
	stop = (cw_stop_on_load || fresh) && cw_park(tgid);
	e = bpf_ringbuf_reserve(&rb_life, sizeof(*e), 0);
	if (!e) {
		cw_count_loss(CW_LOSS_RB_LIFE);
		return 0;
	}
	cw_fill_hdr(&e->hdr, bpf_ktime_get_ns(), id, CW_OP_LIB_LOAD, CW_SRC_LOADER, 0);
	e->stopped = stop;
	e->pad = 0;
	/* a parked process waits for user space: wake it (it watches rb_life); otherwise the drain timer reads it */
	bpf_ringbuf_submit(e, stop ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
	return 0;
}


/*
 * Parking without a uprobe in every process (cw_mmap_watch +
 * cw_mprotect_watch, attached instead of the ld.so uprobe when the kernel has
 * syscall tracepoints): system-wide (cw_park_new_cuda: any process that maps
 * a CUDA library) and for explicit targets (cw_stop_on_load: only tgids in
 * cw_traced, which the fork tracepoint extends to their children; exec keeps
 * the tgid, so an exec'd image is watched too).
 *
 * Why: a uprobe on ld.so is installed into every process that maps ld.so,
 * i.e. every dynamically linked program on the machine, traced or not: the
 * kernel writes the breakpoint into a private copy of the probed page at
 * exec, and `_dl_debug_state` starts with `ret`, which x86 cannot emulate, so
 * each of the two hits per exec traps, creates the process's out-of-line area
 * and single-steps there. On this VM that was ~300 us of CPU per exec of
 * /bin/true, whatever the program does (an empty BPF program costs the same:
 * BENCHMARKS.md §7b).
 *
 * Instead, two syscall tracepoints. The loader maps every object's first
 * segment with mmap(fd, offset 0, MAP_PRIVATE) before any of its code runs
 * (glibc _dl_map_segments; at start-up and on dlopen alike): at sys_enter_mmap
 * a file named like a CUDA library marks the process for a park
 * (cw_park_pending = CW_PEND_PARK), and any other shared object mapped by a
 * traced process marks it for a report (CW_PEND_REPORT). Once the loader has
 * mapped every object of that load it relocates them and write-protects each
 * one's RELRO part, mprotect(PROT_READ), before any initializer runs: at that
 * sys_enter_mprotect a process marked for a park is parked (the SIGSTOP is
 * taken on the way back to user space), the moment the ld.so probe parked it
 * at (the RT_CONSISTENT rendezvous): user space finds the library and
 * everything loaded with it in /proc/PID/maps, attaches, resumes. A process
 * marked for a report gets an unparked record at that same moment, so its
 * mappings are refreshed once the whole load is mapped (kernel names and
 * stacks of later-loaded objects). One record per load, not two per
 * rendezvous pair as with the uprobe.
 * A load with no RELRO anywhere (an object linked with -z norelro and nothing
 * else new) is not parked there: its mark waits for the next
 * mprotect(PROT_READ) (a later load), and user space's rescan attaches the
 * library late and says so (src/run/trace-session.ts).
 * What a process that never maps a CUDA library pays: the syscall tracepoint
 * path on each syscall (enabling any syscall tracepoint routes every syscall
 * through it), the name check on each of its file mmaps at offset 0, one map
 * lookup per mprotect(PROT_READ); no page copy, no trap.
 */
struct cw_sys_enter_mmap {
	__u64 common;  /* common_type, common_flags, common_preempt_count, common_pid */
	__s32 nr;
	__u32 pad;
	__u64 addr;
	__u64 len;
	__u64 prot;
	__u64 flags;
	__u64 fd;
	__u64 off;
};

#define CW_PEND_REPORT 1 /* a traced process mapped a shared object: record it (unparked) at the load's RELRO */
#define CW_PEND_PARK 2   /* it mapped a CUDA library: park it there */

/* processes that mapped a shared object, handled at their next mprotect(PROT_READ): value CW_PEND_* */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u32);
} cw_park_pending SEC(".maps");

static __always_inline void cw_emit_load(__u64 id, bool stop)
{
	struct cw_loader *e = bpf_ringbuf_reserve(&rb_life, sizeof(*e), 0);

	if (!e) {
		cw_count_loss(CW_LOSS_RB_LIFE);
		return;
	}
	cw_fill_hdr(&e->hdr, bpf_ktime_get_ns(), id, CW_OP_LIB_LOAD, CW_SRC_LOADER, 0);
	e->stopped = stop;
	e->pad = 0;
	/* a parked process waits for user space: wake it (it watches rb_life) */
	bpf_ringbuf_submit(e, stop ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
}

#define CW_MAP_TYPE 0x03      /* MAP_SHARED | MAP_PRIVATE */
#define CW_MAP_PRIVATE 0x02
#define CW_MAP_ANONYMOUS 0x20

/* the file of fd in the current task, or NULL */
static __always_inline struct file *cw_fd_file(__u32 fd)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct fdtable *fdt = BPF_CORE_READ(t, files, fdt);
	struct file **arr;
	struct file *f = NULL;

	if (!fdt || fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	arr = BPF_CORE_READ(fdt, fd);
	bpf_probe_read_kernel(&f, sizeof(f), arr + fd);
	return f;
}

/* is the NUL-terminated name in buf (n bytes) a shared object's: ".so" at its end or before ".<digit>" (not ld.so.cache)? */
static __always_inline bool cw_shared_object_name(const char *buf, long n)
{
	for (long k = 0; k + 5 < CW_NAME_MAX; k++) {
		if (k + 3 > n)
			break;
		if (buf[k] != '.' || buf[k + 1] != 's' || buf[k + 2] != 'o')
			continue;
		if (buf[k + 3] == 0 || (buf[k + 3] == '.' && buf[k + 4] >= '0' && buf[k + 4] <= '9'))
			return true;
	}
	return false;
}

SEC("tracepoint/syscalls/sys_enter_mmap")
int cw_mmap_watch(struct cw_sys_enter_mmap *ctx)
{
	__u64 id, flags = ctx->flags;
	__u32 tgid, zero = 0;
	struct file *f;
	const unsigned char *name;
	char *buf;
	long n;

	/* the loader's first mapping of an object: private, file-backed, offset 0 */
	if (ctx->off != 0 || (flags & CW_MAP_TYPE) != CW_MAP_PRIVATE || (flags & CW_MAP_ANONYMOUS) || (__s64)ctx->fd < 0)
		return 0;
	id = bpf_get_current_pid_tgid();
	tgid = id >> 32;
	if (tgid == cw_self_tgid)
		return 0;
	/*
	 * Without system-wide parking only a traced process can act on a name:
	 * the others (every unrelated exec while `trace -- CMD` runs) skip the
	 * file and name reads. With it, the traced lookup waits until a name
	 * could need it (a shared object's), so /bin/true's ld.so.cache and the
	 * like cost no map lookup.
	 */
	bool traced = false;
	if (!cw_park_new_cuda) {
		traced = cw_is_traced(tgid);
		if (!traced)
			return 0;
	}
	f = cw_fd_file((__u32)ctx->fd);
	if (!f)
		return 0;
	name = BPF_CORE_READ(f, f_path.dentry, d_name.name);
	buf = bpf_map_lookup_elem(&cw_name_buf, &zero);
	if (!name || !buf)
		return 0;
	n = bpf_probe_read_kernel_str(buf, CW_NAME_MAX, name);
	if (n <= 0)
		return 0;
	bool cuda = cw_cuda_base(buf), so = false;
	if (cw_park_new_cuda && !cuda) {
		so = cw_shared_object_name(buf, n);
		if (!so)
			return 0;
		traced = cw_is_traced(tgid);
	}
	if (cuda && (cw_park_new_cuda || (cw_stop_on_load && traced))) {
		__u32 park = CW_PEND_PARK;
		bpf_map_update_elem(&cw_park_pending, &tgid, &park, BPF_ANY);
	} else if (traced && (cuda || so || cw_shared_object_name(buf, n))) {
		/* a report only: never downgrades a pending park of the same load */
		__u32 report = CW_PEND_REPORT;
		bpf_map_update_elem(&cw_park_pending, &tgid, &report, BPF_NOEXIST);
	}
	return 0;
}

struct cw_sys_enter_mprotect {
	__u64 common;
	__s32 nr;
	__u32 pad;
	__u64 start;
	__u64 len;
	__u64 prot;
};

#define CW_PROT_READ 0x1

SEC("tracepoint/syscalls/sys_enter_mprotect")
int cw_mprotect_watch(struct cw_sys_enter_mprotect *ctx)
{
	__u64 id;
	__u32 tgid;

	/* the loader's RELRO protection, after it mapped and relocated a load's objects */
	if (ctx->prot != CW_PROT_READ)
		return 0;
	id = bpf_get_current_pid_tgid();
	tgid = id >> 32;
	__u32 *pend = bpf_map_lookup_elem(&cw_park_pending, &tgid);
	if (!pend)
		return 0;
	bool park = *pend == CW_PEND_PARK;
	bpf_map_delete_elem(&cw_park_pending, &tgid);
	/* park even when the ring is full: attaching matters more than the record */
	cw_emit_load(id, park && cw_park(tgid));
	return 0;
}
