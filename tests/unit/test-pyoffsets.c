/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Every offset of the CPython 3.11 table (libdiag/pyframes.c) against 3.11's own
 * headers, internal ones included (python3.11-dev). Skipped without them. */
#include <stdio.h>

#if __has_include(<Python.h>) && __has_include(<internal/pycore_frame.h>)
#ifndef Py_BUILD_CORE
#define Py_BUILD_CORE 1
#endif
#include <Python.h>
#include <internal/pycore_code.h>
#include <internal/pycore_frame.h>
#include <internal/pycore_interp.h>
#include <internal/pycore_runtime.h>
#define HAVE_PY_HEADERS 1
#endif

#include "diag/pyframes.h"
#include "tap.h"

#ifndef HAVE_PY_HEADERS
int main(void) {
        printf("skip: no CPython headers with internal ones (python3.11-dev)\n");
        return 77;
}
#else
int main(void) {
        const struct diag_pyoffsets *o;
        PyASCIIObject a;
        uint32_t word;

        if (PY_MAJOR_VERSION != 3 || PY_MINOR_VERSION != 11) {
                printf("skip: the headers found are CPython %d.%d, this test checks 3.11\n",
                       PY_MAJOR_VERSION, PY_MINOR_VERSION);
                return 77;
        }
        o = diag_pyoffsets_get(3, 11);
        CHECK(o != NULL);
        if (!o)
                return TAP_DONE();
        CHECK_INT(o->runtime_interpreters_head, offsetof(_PyRuntimeState, interpreters.head));
        CHECK_INT(o->runtime_tstate_current, offsetof(_PyRuntimeState, gilstate.tstate_current));
        CHECK_INT(o->interp_next, offsetof(PyInterpreterState, next));
        CHECK_INT(o->interp_threads_head, offsetof(PyInterpreterState, threads.head));
        CHECK_INT(o->tstate_next, offsetof(PyThreadState, next));
        CHECK_INT(o->tstate_native_thread_id, offsetof(PyThreadState, native_thread_id));
        CHECK_INT(o->tstate_cframe, offsetof(PyThreadState, cframe));
        CHECK_INT(o->cframe_current_frame, offsetof(_PyCFrame, current_frame));
        CHECK_INT(o->frame_code, offsetof(_PyInterpreterFrame, f_code));
        CHECK_INT(o->frame_previous, offsetof(_PyInterpreterFrame, previous));
        CHECK_INT(o->frame_prev_instr, offsetof(_PyInterpreterFrame, prev_instr));
        CHECK_INT(o->frame_is_entry, offsetof(_PyInterpreterFrame, is_entry));
        CHECK_INT(o->frame_owner, offsetof(_PyInterpreterFrame, owner));
        CHECK_INT(o->object_type, offsetof(PyObject, ob_type));
        CHECK_INT(o->code_qualname, offsetof(PyCodeObject, co_qualname));
        CHECK_INT(o->code_filename, offsetof(PyCodeObject, co_filename));
        CHECK_INT(o->code_firstlineno, offsetof(PyCodeObject, co_firstlineno));
        CHECK_INT(o->code_linetable, offsetof(PyCodeObject, co_linetable));
        CHECK_INT(o->code_adaptive, offsetof(PyCodeObject, co_code_adaptive));
        CHECK_INT(o->var_size, offsetof(PyVarObject, ob_size));
        CHECK_INT(o->bytes_sval, offsetof(PyBytesObject, ob_sval));
        CHECK_INT(o->unicode_length, offsetof(PyASCIIObject, length));
        CHECK_INT(o->unicode_state, offsetof(PyASCIIObject, state));
        CHECK_INT(o->unicode_ascii_size, sizeof(PyASCIIObject));
        CHECK_INT(o->unicode_compact_size, sizeof(PyCompactUnicodeObject));

        /* The sizes the reader assumes when it reads these fields. */
        CHECK_INT(sizeof(((PyThreadState *) 0)->native_thread_id), 8);
        CHECK_INT(sizeof(((PyCodeObject *) 0)->co_firstlineno), 4);
        CHECK_INT(sizeof(((_PyInterpreterFrame *) 0)->is_entry), 1);
        CHECK_INT(sizeof(_Py_CODEUNIT), 2);
        CHECK_INT(sizeof(Py_ssize_t), 8);
        CHECK_INT(sizeof(((PyASCIIObject *) 0)->length), 8);

        /* The state bits the reader decodes: kind at bits 2-4, compact 5, ascii 6. */
        memset(&a, 0, sizeof a);
        a.state.kind = PyUnicode_4BYTE_KIND;
        a.state.compact = 1;
        a.state.ascii = 1;
        memcpy(&word, (const char *) &a + o->unicode_state, sizeof word);
        CHECK_INT((word >> 2) & 7, 4);
        CHECK_INT((word >> 5) & 1, 1);
        CHECK_INT((word >> 6) & 1, 1);
        CHECK_INT(word & 3, 0);

        CHECK(diag_pyoffsets_get(3, 12) == NULL);
        return TAP_DONE();
}
#endif
