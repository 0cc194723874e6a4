/*
 * libcauseway-nvtx.so: Causeway's NVTX injection library.
 *
 * NVTX3 is header-only: an application's nvtxRangePushA is an inline function
 * that calls through a function table, filled on first use by the injection
 * library named by NVTX_INJECTION64_PATH (nvtxDetail/nvtxInit.h): it is
 * dlopen'ed, its InitializeInjectionNvtx2 is called with the NVTX export
 * table getter, and it writes its handlers into the CORE and CORE2 module
 * tables (GetModuleFunctionTable). With no injection library the calls do
 * nothing, and there is no exported function a uprobe could see.
 *
 * This library's handlers are plain exported functions, causeway_nvtx*, with
 * the same arguments as the NVTX v2 exports (libnvToolsExt.so.1), so the
 * same uprobes (bpf/nvtx.bpf.c) read them. They keep what NVTX promises a
 * tool provides: push/pop return the nesting level per thread and domain,
 * range starts return unique ids, domains and registered strings get handles.
 *
 * libnvToolsExt.so.1 (NVTX v2, or any library exporting the NVTX API) also
 * loads NVTX_INJECTION64_PATH. Its own exports are probed already, so there it
 * gets the same behaviour from handlers that are NOT exported (no uprobe on
 * them): every call is recorded once, and its pushes and starts get real
 * levels and ids. Which host called is told by where its export-table getter
 * lives (dladdr): inside a file named libnvToolsExt.so*, or not.
 *
 * Build: Makefile (frame-pointer prologue: a uprobe on `push %rbp` is
 * emulated, ~0.5 us, not single-stepped; -fno-ipa-icf keeps every handler at
 * its own address).
 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include <nvtx3/nvToolsExt.h>

#define EXPORT __attribute__((visibility("default"), noinline, used))
/* helpers stay calls (never inlined): a handler that calls nothing would be a leaf,
 * and gcc gives a leaf no `push %rbp` whatever the flags */
#define HELPER static __attribute__((noinline))

HELPER void keep(const void *p) { __asm__ volatile("" ::"r"(p) : "memory"); }

/* ---- state shared by both handler sets ---- */

#define CW_MAX_DOMAINS 16
static __thread struct { const void *domain; int depth; } cw_depth[CW_MAX_DOMAINS];
static uint64_t cw_next_range = 1;

/* nesting depth of (this thread, domain): slot 0 is the default domain, others claimed on first use; NULL when full */
static int *depth_of(const void *domain)
{
  if (!domain) return &cw_depth[0].depth;
  for (int i = 1; i < CW_MAX_DOMAINS; i++)
    if (cw_depth[i].domain == domain) return &cw_depth[i].depth;
  for (int i = 1; i < CW_MAX_DOMAINS; i++) {
    if (!cw_depth[i].domain) {
      cw_depth[i].domain = domain;
      return &cw_depth[i].depth;
    }
  }
  return NULL;
}

HELPER int push(const void *domain)
{
  int *d = depth_of(domain);
  return d ? (*d)++ : NVTX_NO_PUSH_POP_TRACKING;
}

HELPER int pop(const void *domain)
{
  int *d = depth_of(domain);
  if (!d) return NVTX_NO_PUSH_POP_TRACKING;
  if (*d == 0) return -1; /* pop without a push */
  return --(*d);
}

HELPER uint64_t start(void)
{
  return __atomic_fetch_add(&cw_next_range, 1, __ATOMIC_RELAXED);
}

struct cw_domain { char name[64]; };

HELPER nvtxDomainHandle_t domain_create(const char *name)
{
  struct cw_domain *d = calloc(1, sizeof(*d));
  if (d && name) strncpy(d->name, name, sizeof(d->name) - 1);
  return (nvtxDomainHandle_t)d;
}

/* a registered string's handle is a copy of it (stable for the process's life, as NVTX requires) */
HELPER nvtxStringHandle_t register_string(const char *s)
{
  return (nvtxStringHandle_t)(s ? strdup(s) : NULL);
}

/* ---- probed handlers (NVTX3 code compiled into the application or its libraries) ---- */

EXPORT void causeway_nvtxMarkEx(const nvtxEventAttributes_t *a) { keep(a); }
EXPORT void causeway_nvtxMarkA(const char *m) { keep(m); }
EXPORT nvtxRangeId_t causeway_nvtxRangeStartEx(const nvtxEventAttributes_t *a) { (void)a; return start(); }
EXPORT nvtxRangeId_t causeway_nvtxRangeStartA(const char *m) { (void)m; return start(); }
EXPORT void causeway_nvtxRangeEnd(nvtxRangeId_t id) { keep((const void *)(uintptr_t)id); }
EXPORT int causeway_nvtxRangePushEx(const nvtxEventAttributes_t *a) { (void)a; return push(NULL); }
EXPORT int causeway_nvtxRangePushA(const char *m) { (void)m; return push(NULL); }
EXPORT int causeway_nvtxRangePushW(const wchar_t *m) { (void)m; return push(NULL); }
EXPORT int causeway_nvtxRangePop(void) { return pop(NULL); }
EXPORT void causeway_nvtxDomainMarkEx(nvtxDomainHandle_t d, const nvtxEventAttributes_t *a) { keep(d); keep(a); }
EXPORT int causeway_nvtxDomainRangePushEx(nvtxDomainHandle_t d, const nvtxEventAttributes_t *a) { (void)a; return push(d); }
EXPORT int causeway_nvtxDomainRangePop(nvtxDomainHandle_t d) { return pop(d); }
/* not probed (no op): handles only */
EXPORT nvtxDomainHandle_t causeway_nvtxDomainCreateA(const char *name) { return domain_create(name); }
EXPORT void causeway_nvtxDomainDestroy(nvtxDomainHandle_t d) { keep(d); }
EXPORT nvtxStringHandle_t causeway_nvtxDomainRegisterStringA(nvtxDomainHandle_t d, const char *s) { (void)d; return register_string(s); }

/* ---- unprobed handlers (libnvToolsExt hosts: their exports are probed) ---- */

static nvtxRangeId_t v2_start_ex(const nvtxEventAttributes_t *a) { (void)a; return start(); }
static nvtxRangeId_t v2_start_a(const char *m) { (void)m; return start(); }
static int v2_push_ex(const nvtxEventAttributes_t *a) { (void)a; return push(NULL); }
static int v2_push_a(const char *m) { (void)m; return push(NULL); }
static int v2_push_w(const wchar_t *m) { (void)m; return push(NULL); }
static int v2_pop(void) { return pop(NULL); }
static int v2_domain_push(nvtxDomainHandle_t d, const nvtxEventAttributes_t *a) { (void)a; return push(d); }
static int v2_domain_pop(nvtxDomainHandle_t d) { return pop(d); }
static nvtxDomainHandle_t v2_domain_create(const char *name) { return domain_create(name); }
static nvtxStringHandle_t v2_register_string(nvtxDomainHandle_t d, const char *s) { (void)d; return register_string(s); }

typedef void (*fnptr)(void);

static void set(NvtxFunctionTable table, unsigned size, unsigned slot, fnptr f)
{
  if (table && slot < size && table[slot]) *table[slot] = f;
}

/* Is the NVTX implementation that called us libnvToolsExt (exports probed by Causeway)? */
static int host_is_probed_library(NvtxGetExportTableFunc_t get)
{
  Dl_info info;
  if (!dladdr((void *)get, &info) || !info.dli_fname) return 0;
  const char *base = strrchr(info.dli_fname, '/');
  base = base ? base + 1 : info.dli_fname;
  return strncmp(base, "libnvToolsExt.so", 16) == 0;
}

EXPORT int InitializeInjectionNvtx2(NvtxGetExportTableFunc_t get)
{
  if (!get) return 0;
  const NvtxExportTableCallbacks *cb = (const NvtxExportTableCallbacks *)get(NVTX_ETID_CALLBACKS);
  if (!cb || !cb->GetModuleFunctionTable) return 0;
  int probed = !host_is_probed_library(get);
  NvtxFunctionTable t = NULL;
  unsigned n = 0;
  if (cb->GetModuleFunctionTable(NVTX_CB_MODULE_CORE, &t, &n) && t) {
    if (probed) {
      set(t, n, NVTX_CBID_CORE_MarkEx, (fnptr)causeway_nvtxMarkEx);
      set(t, n, NVTX_CBID_CORE_MarkA, (fnptr)causeway_nvtxMarkA);
      set(t, n, NVTX_CBID_CORE_RangeStartEx, (fnptr)causeway_nvtxRangeStartEx);
      set(t, n, NVTX_CBID_CORE_RangeStartA, (fnptr)causeway_nvtxRangeStartA);
      set(t, n, NVTX_CBID_CORE_RangeEnd, (fnptr)causeway_nvtxRangeEnd);
      set(t, n, NVTX_CBID_CORE_RangePushEx, (fnptr)causeway_nvtxRangePushEx);
      set(t, n, NVTX_CBID_CORE_RangePushA, (fnptr)causeway_nvtxRangePushA);
      set(t, n, NVTX_CBID_CORE_RangePushW, (fnptr)causeway_nvtxRangePushW);
      set(t, n, NVTX_CBID_CORE_RangePop, (fnptr)causeway_nvtxRangePop);
    } else {
      set(t, n, NVTX_CBID_CORE_RangeStartEx, (fnptr)v2_start_ex);
      set(t, n, NVTX_CBID_CORE_RangeStartA, (fnptr)v2_start_a);
      set(t, n, NVTX_CBID_CORE_RangePushEx, (fnptr)v2_push_ex);
      set(t, n, NVTX_CBID_CORE_RangePushA, (fnptr)v2_push_a);
      set(t, n, NVTX_CBID_CORE_RangePushW, (fnptr)v2_push_w);
      set(t, n, NVTX_CBID_CORE_RangePop, (fnptr)v2_pop);
    }
  }
  t = NULL;
  n = 0;
  if (cb->GetModuleFunctionTable(NVTX_CB_MODULE_CORE2, &t, &n) && t) {
    if (probed) {
      set(t, n, NVTX_CBID_CORE2_DomainMarkEx, (fnptr)causeway_nvtxDomainMarkEx);
      set(t, n, NVTX_CBID_CORE2_DomainRangePushEx, (fnptr)causeway_nvtxDomainRangePushEx);
      set(t, n, NVTX_CBID_CORE2_DomainRangePop, (fnptr)causeway_nvtxDomainRangePop);
      set(t, n, NVTX_CBID_CORE2_DomainCreateA, (fnptr)causeway_nvtxDomainCreateA);
      set(t, n, NVTX_CBID_CORE2_DomainDestroy, (fnptr)causeway_nvtxDomainDestroy);
      set(t, n, NVTX_CBID_CORE2_DomainRegisterStringA, (fnptr)causeway_nvtxDomainRegisterStringA);
    } else {
      set(t, n, NVTX_CBID_CORE2_DomainRangePushEx, (fnptr)v2_domain_push);
      set(t, n, NVTX_CBID_CORE2_DomainRangePop, (fnptr)v2_domain_pop);
      set(t, n, NVTX_CBID_CORE2_DomainCreateA, (fnptr)v2_domain_create);
      set(t, n, NVTX_CBID_CORE2_DomainRegisterStringA, (fnptr)v2_register_string);
    }
  }
  return 1;
}
