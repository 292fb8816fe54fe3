/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "diag/unwind.h"

/*
 * CPython frames read from a running interpreter's memory (process_vm_readv only;
 * nothing stopped, nothing written): the dynamic symbol _PyRuntime -> interpreters
 * -> thread states -> current frame -> code object: qualified name, file name, and
 * the line from the code object's line table.
 *
 * Struct offsets come from the version's own headers: a unit test compiles against
 * them (python3.X-dev internal headers) and checks every offset used here. 3.13+
 * publishes _Py_DebugOffsets in the target itself. Any other version is reported as
 * unknown (-EPROTONOSUPPORT) with its version string: native frames only.
 */

struct diag_pyframe {
        const char *qualname;           /* "Worker.spin", owned by the reader's cache */
        const char *filename;           /* "/srv/app/worker.py", owned by the reader's cache */
        int line;                       /* current line, 0 if unknown */
        int firstline;                  /* co_firstlineno */
        bool entry;                     /* the first Python frame of one C call of the eval loop */
};

struct diag_pythread {
        pid_t tid;                      /* native thread id */
        bool holds_gil;
        size_t n;
        struct diag_pyframe *frames;    /* innermost first; malloc'd, freed by diag_pythread_clear */
};

struct diag_pyreader;

/* -ENOENT: not a CPython process (no _PyRuntime); -EPROTONOSUPPORT: a CPython whose
 * version this reader does not know (diag_pyreader_version still says which);
 * -ESRCH gone; -EPERM not permitted to read its memory. ret_version (may be NULL)
 * gets "3.11.2" or similar even on -EPROTONOSUPPORT (malloc'd, caller frees). */
int diag_pyreader_new(pid_t pid, struct diag_pyreader **ret, char **ret_version);
struct diag_pyreader *diag_pyreader_free(struct diag_pyreader *r);
static inline void diag_pyreader_freep(struct diag_pyreader **r) { diag_pyreader_free(*r); }
const char *diag_pyreader_version(const struct diag_pyreader *r);

/* The Python frames of one native thread now. 0 with n == 0 when that thread runs
 * no Python code. Code objects are cached by address, so a sample costs a few
 * small reads. */
int diag_pyreader_thread(struct diag_pyreader *r, pid_t tid, struct diag_pythread *ret);
void diag_pythread_clear(struct diag_pythread *t);

/* Splice: a copy of native (frames innermost first) where each eval-loop frame
 * (_PyEval_EvalFrameDefault) is preceded by the Python frames it runs, innermost
 * first, up to and including the next entry frame (between the physical eval-loop
 * frame and the frames inlined into it, which precede it: the inlined code, an int
 * add or the call of the next C function, was called by the Python code the loop
 * runs). Python frames have python = true
 * and module -1. Python frames left over (the native unwind stopped early) go above
 * the outermost native frame. Strings are shared with native and py (not copied):
 * out->frames is malloc'd, free it with free() (not diag_stack_clear). */
int diag_py_splice(const struct diag_stack *native, const struct diag_pythread *py, struct diag_stack *out);

/* The struct offsets the reader uses for one CPython minor version: for 3.11 and
 * 3.12 from that version's headers (tests/unit/test-pyoffsets.c checks them with
 * offsetof), for 3.13 from the _Py_DebugOffsets the interpreter carries at the
 * start of _PyRuntime. */
struct diag_pyoffsets {
        unsigned major, minor;
        size_t runtime_interpreters_head;       /* _PyRuntimeState.interpreters.head */
        size_t runtime_tstate_current;          /* 3.11: _PyRuntimeState.gilstate.tstate_current; 0 none */
        size_t interp_next;                     /* PyInterpreterState.next */
        size_t interp_threads_head;             /* PyInterpreterState.threads.head */
        size_t interp_gil;                      /* 3.12: PyInterpreterState.ceval.gil (a pointer); 0 none */
        size_t gil_locked, gil_holder;          /* 3.12: in struct _gil_runtime_state; 3.13: from the
                                                 * interpreter state (its own _gil); 0 none */
        size_t tstate_next;                     /* PyThreadState.next */
        size_t tstate_native_thread_id;         /* PyThreadState.native_thread_id */
        size_t tstate_cframe;                   /* 3.11, 3.12: PyThreadState.cframe; 0: no cframe (3.13) */
        size_t cframe_current_frame;            /* _PyCFrame.current_frame, or PyThreadState.current_frame
                                                 * when tstate_cframe is 0 */
        size_t frame_code;                      /* _PyInterpreterFrame.f_code (3.13: f_executable) */
        size_t frame_previous;                  /* _PyInterpreterFrame.previous */
        size_t frame_prev_instr;                /* _PyInterpreterFrame.prev_instr (3.13: instr_ptr) */
        size_t frame_is_entry;                  /* 3.11: _PyInterpreterFrame.is_entry; 0 none */
        size_t frame_owner;                     /* _PyInterpreterFrame.owner */
        int owner_cstack;                       /* 3.12+: FRAME_OWNED_BY_CSTACK (the entry shim); -1 none */
        size_t object_type;                     /* PyObject.ob_type */
        size_t code_qualname;                   /* PyCodeObject.co_qualname */
        size_t code_filename;                   /* PyCodeObject.co_filename */
        size_t code_firstlineno;                /* PyCodeObject.co_firstlineno */
        size_t code_linetable;                  /* PyCodeObject.co_linetable */
        size_t code_adaptive;                   /* PyCodeObject.co_code_adaptive */
        size_t var_size;                        /* PyVarObject.ob_size */
        size_t bytes_sval;                      /* PyBytesObject.ob_sval */
        size_t unicode_length;                  /* PyASCIIObject.length */
        size_t unicode_state;                   /* PyASCIIObject.state (interned:2 kind:3 compact:1 ascii:1) */
        size_t unicode_ascii_size;              /* sizeof(PyASCIIObject): compact ASCII data follows */
        size_t unicode_compact_size;            /* sizeof(PyCompactUnicodeObject): compact non-ASCII data follows */
};

/* 3.13: the offsets from a copy of the target's _Py_DebugOffsets (the first len
 * bytes of _PyRuntime). -EPROTONOSUPPORT for another layout (3.14+, or a
 * free-threaded build), -EBADMSG when it does not start with the cookie. */
int diag_pyoffsets_from_debug(const void *buf, size_t len, struct diag_pyoffsets *ret);
#define DIAG_PY_DEBUG_OFFSETS_313_SIZE 584

/* The table for major.minor, NULL when there is none. */
const struct diag_pyoffsets *diag_pyoffsets_get(unsigned major, unsigned minor);

/* The line of the instruction at code unit index lasti, from a 3.11 location table
 * (co_linetable); firstline when lasti < 0, -1 for an instruction without a line.
 * Exposed for tests. */
int diag_py_linetable_line(const uint8_t *table, size_t len, int firstline, int lasti);
