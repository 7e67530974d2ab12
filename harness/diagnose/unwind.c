/* unwind: symbolized user-space backtraces of ptrace-stopped threads, through elfutils
 * libdwfl (file:line where debug info exists, inlined calls expanded as eu-stack -i does).
 * The only user of libdw in the harness. */
#include "diagnose_internal.h"

#include <dwarf.h>
#include <elfutils/libdwfl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct unwind_walk {
    Dwfl *dwfl;
    const struct diag_unwind_sink *sink;
    pid_t tid;
    unsigned nframes;
};

static void unwind_emit(struct unwind_walk *w, uint64_t pc, bool inlined, int line,
                        const char *function, const char *file, const char *module)
{
    struct diag_frame f = {.pc = pc, .inlined = inlined, .line = line};
    diag_copy(f.function, sizeof(f.function), function ? function : "");
    diag_copy(f.file, sizeof(f.file), file ? file : "");
    diag_copy(f.module, sizeof(f.module), module ? diag_basename(module) : "");
    w->sink->frame(w->sink->sink_ctx, w->tid, &f);
    w->nframes++;
}

static const char *unwind_die_name(Dwarf_Die *die)
{
    Dwarf_Attribute attr;
    const char *name = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_name, &attr));
    return name;
}

/* Where an inlined call was made: its DW_AT_call_file / DW_AT_call_line. */
static void unwind_call_site(Dwarf_Die *cudie, Dwarf_Die *inlined, const char **file, int *line)
{
    Dwarf_Attribute attr;
    Dwarf_Word file_index, call_line;
    Dwarf_Files *files;
    size_t nfiles;
    if (dwarf_formudata(dwarf_attr(inlined, DW_AT_call_file, &attr), &file_index) != 0 ||
        dwarf_getsrcfiles(cudie, &files, &nfiles) != 0 || file_index >= nfiles) {
        *file = NULL;
        *line = 0;
        return;
    }
    *file = dwarf_filesrc(files, file_index, NULL, NULL);
    *line = dwarf_formudata(dwarf_attr(inlined, DW_AT_call_line, &attr), &call_line) == 0
                ? (int)call_line
                : 0;
}

/* One machine frame, expanded into its inlined calls (innermost first) as eu-stack -i does. */
static void unwind_frames_at(struct unwind_walk *w, Dwfl_Module *mod, uint64_t pc, Dwarf_Addr at)
{
    const char *module =
        mod ? dwfl_module_info(mod, NULL, NULL, NULL, NULL, NULL, NULL, NULL) : NULL;
    const char *symbol = mod ? dwfl_module_addrname(mod, at) : NULL;
    const char *file = NULL;
    int line = 0;
    Dwfl_Line *src = mod ? dwfl_module_getsrc(mod, at) : NULL;
    if (src != NULL)
        file = dwfl_lineinfo(src, NULL, &line, NULL, NULL, NULL);

    Dwarf_Addr bias = 0;
    Dwarf_Die *cudie = mod ? dwfl_module_addrdie(mod, at, &bias) : NULL;
    Dwarf_Die *scopes = NULL;
    int nscopes = cudie ? dwarf_getscopes(cudie, at - bias, &scopes) : 0;
    for (int i = 0; i < nscopes && w->nframes < DIAG_MAX_FRAMES; i++) {
        if (dwarf_tag(&scopes[i]) != DW_TAG_inlined_subroutine)
            continue;
        unwind_emit(w, pc, true, line, unwind_die_name(&scopes[i]), file, module);
        unwind_call_site(cudie, &scopes[i], &file, &line);
    }
    free(scopes);
    if (w->nframes < DIAG_MAX_FRAMES)
        unwind_emit(w, pc, false, line, symbol, file, module);
}

static int unwind_frame(Dwfl_Frame *frame, void *arg)
{
    struct unwind_walk *w = arg;
    Dwarf_Addr pc;
    bool activation;
    if (!dwfl_frame_pc(frame, &pc, &activation))
        return DWARF_CB_ABORT;
    /* A return address points after the call; pc - 1 is inside it, on the caller's line. */
    Dwarf_Addr at = activation ? pc : pc - 1;
    unwind_frames_at(w, dwfl_addrmodule(w->dwfl, at), pc, at);
    return w->nframes >= DIAG_MAX_FRAMES ? DWARF_CB_ABORT : DWARF_CB_OK;
}

int diag_unwind(pid_t pid, const pid_t *tids, size_t n, const struct diag_unwind_sink *sink,
                char *err, size_t errlen)
{
    static const Dwfl_Callbacks callbacks = {
        .find_elf = dwfl_linux_proc_find_elf,
        .find_debuginfo = dwfl_standard_find_debuginfo,
    };
    Dwfl *dwfl = dwfl_begin(&callbacks);
    if (dwfl == NULL) {
        snprintf(err, errlen, "dwfl_begin: %s", dwfl_errmsg(-1));
        return -1;
    }
    dwfl_report_begin(dwfl);
    int rc = dwfl_linux_proc_report(dwfl, pid);
    dwfl_report_end(dwfl, NULL, NULL);
    /* true: the threads are already ptrace-stopped by the caller; dwfl must not attach or
     * detach. */
    if (rc == 0)
        rc = dwfl_linux_proc_attach(dwfl, pid, true);
    if (rc != 0) {
        snprintf(err, errlen, "libdwfl could not read the process: %s",
                 rc > 0 ? strerror(rc) : dwfl_errmsg(-1));
        dwfl_end(dwfl);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        struct unwind_walk w = {.dwfl = dwfl, .sink = sink, .tid = tids[i]};
        if (dwfl_getthread_frames(dwfl, tids[i], unwind_frame, &w) != 0 &&
            w.nframes < DIAG_MAX_FRAMES)
            sink->stopped(sink->sink_ctx, tids[i], dwfl_errmsg(-1));
    }
    dwfl_end(dwfl);
    return 0;
}
