/* The recorder's hot paths in C: the body of Recorder.__torch_function__ and the common case of what
 * runs as a module call begins and ends (shapetrace/capture/recorder.py is the reference: the same raw
 * entries, records.Entries, and the same behaviour). They are called from Python code that torch.compile
 * can trace (CompiledRecorder.__torch_function__, _private/module_calls.py), and only when it is
 * not tracing. What is
 * rare the C code hands over to Recorder's Python methods: tensors without sizes, listeners,
 * keyword tensors of a module call, calls that do not end innermost-first, a recorder whose state
 * does not have the types it is given in Python.
 *
 * RecorderBase holds the state both sides read as members (Python reads and writes them as
 * attributes); configure() hands in, once, the objects the bodies use (torch's types, the shared
 * caches of capture/source.py, the Python fallbacks). Plain C API, CPython >= 3.11. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <frameobject.h>
#include <pythread.h>
#include <structmember.h>

/* --- what configure() hands in ------------------------------------------------------------- */

static PyObject *TensorType, *ParameterType, *ScriptModuleType;
static PyObject *not_ops, *value_ops;
static PyObject *library_code, *callers; /* source.library_code, source.callers */
static PyObject *is_library_code, *called_by_torch_internals, *caller_at, *module_call_frame;
static PyObject *module_call_code;
static Py_ssize_t enter_to_module_call;
static PyObject *no_frame_call;   /* recorder._call */
static PyObject *python_op;       /* Recorder.__torch_function__ (Python) */
static PyObject *raw_tensors;     /* records.raw_tensors(value) */
static PyObject *raw_tensors_off; /* recorder._raw_tensors_off(value): with dispatch off */
/* Recorder's methods the C paths hand over to, called by name: */
static PyObject *s_enter_module, *s_exit_module, *s_hear_entered, *s_record_failure, *s_first_call, *s_ops, *s_number;
static PyObject *tensor_paths[16]; /* "[0]" .. "[15]" */
static PyObject *s_empty, *s_path0, *one;
static int configured = 0;
/* The getters of torch's Tensor.shape, .dtype, .device and .requires_grad (getset descriptors of
 * torch._C.TensorBase), found by configure(): called directly on exact torch.Tensor and nn.Parameter
 * objects, without the attribute lookup (a fifth of a tensor's read, after a forward has cooled the
 * caches). NULL where torch defines one otherwise: then it is read as an attribute. */
typedef struct { PyObject *name; getter get; void *closure; } TensorGetter;
static TensorGetter read_shape, read_dtype, read_device, read_requires_grad;

/* --- the base class ------------------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    PyObject *last;          /* _last: the latest op's tensor output */
    PyObject *last_entry;    /* _last_entry: its raw entry */
    PyObject *stack;         /* _stack: list of running call indices */
    PyObject *open_starts;   /* _open_starts */
    PyObject *op_raw;        /* _op_raw */
    PyObject *call_raw;      /* _call_raw */
    PyObject *numbers;       /* _numbers */
    PyObject *params;        /* _params */
    PyObject *paths;         /* _paths */
    PyObject *calls;         /* _calls */
    PyObject *notes;         /* notes */
    PyObject *values;        /* values */
    PyObject *indirect_calls;
    PyObject *top_op, *module_entered, *root_entered, *root_exited; /* tuples */
    Py_ssize_t foreign_calls;
    unsigned long thread;
} Base;

#define N_OBJECTS 17 /* the PyObject* members above, in order */

static PyObject **objects(Base *self) { return &self->last; }

static int Base_traverse(Base *self, visitproc visit, void *arg) {
    PyObject **items = objects(self);
    for (int i = 0; i < N_OBJECTS; i++) Py_VISIT(items[i]);
    return 0;
}

static int Base_clear(Base *self) {
    PyObject **items = objects(self);
    for (int i = 0; i < N_OBJECTS; i++) Py_CLEAR(items[i]);
    return 0;
}

static void Base_dealloc(Base *self) {
    PyObject_GC_UnTrack(self);
    Base_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* --- helpers --------------------------------------------------------------------------------- */

static inline int is_tensor(PyObject *value) {
    PyTypeObject *type = Py_TYPE(value);
    if (type == &PyLong_Type || type == &PyFloat_Type || type == &PyBool_Type || value == Py_None ||
        type == &PyUnicode_Type || type == &PyTuple_Type || type == &PyList_Type || type == &PySlice_Type ||
        value == Py_Ellipsis)
        return 0;
    if (PyType_IsSubtype(type, (PyTypeObject *)TensorType)) return 1;
    return PyObject_IsInstance(value, TensorType); /* __class__ tricks: as isinstance() */
}

/* tensor.<attribute> (a new reference), through its getter when `tensor` is exactly a Tensor or Parameter. */
static inline PyObject *tensor_attribute(PyObject *tensor, const TensorGetter *attribute) {
    PyObject *type = (PyObject *)Py_TYPE(tensor);
    if (attribute->get != NULL && (type == TensorType || type == ParameterType)) return attribute->get(tensor, attribute->closure);
    return PyObject_GetAttr(tensor, attribute->name);
}

/* Appends a tensor's six raw fields (shape, dtype, device, requires_grad, id, path) to out.
 * Returns 0, or -1 with an error set (a RuntimeError: a tensor without sizes). */
static int tensor_fields(PyObject *tensor, PyObject *path, PyObject **out) {
    PyObject *size = tensor_attribute(tensor, &read_shape);
    if (size == NULL) return -1;
    PyObject *shape;
    if (PyTuple_Check(size)) { /* torch.Size: its items in an exact tuple */
        Py_ssize_t n = PyTuple_GET_SIZE(size);
        shape = PyTuple_New(n);
        if (shape != NULL)
            for (Py_ssize_t i = 0; i < n; i++) PyTuple_SET_ITEM(shape, i, Py_NewRef(PyTuple_GET_ITEM(size, i)));
    } else shape = PySequence_Tuple(size);
    Py_DECREF(size);
    if (shape == NULL) return -1;
    PyObject *dtype = tensor_attribute(tensor, &read_dtype);
    PyObject *device = dtype ? tensor_attribute(tensor, &read_device) : NULL;
    PyObject *grad = device ? tensor_attribute(tensor, &read_requires_grad) : NULL;
    PyObject *ident = grad ? PyLong_FromVoidPtr(tensor) : NULL;
    if (ident == NULL) {
        Py_DECREF(shape); Py_XDECREF(dtype); Py_XDECREF(device); Py_XDECREF(grad);
        return -1;
    }
    out[0] = shape; out[1] = dtype; out[2] = device; out[3] = grad; out[4] = ident;
    Py_INCREF(path); out[5] = path;
    return 0;
}

/* A growable array of owned references: the fields of an entry's tensors, one after another. */
typedef struct {
    PyObject **items;
    Py_ssize_t size, capacity;
    PyObject *inline_items[96];
} Fields;

static void fields_init(Fields *f) { f->items = f->inline_items; f->size = 0; f->capacity = 96; }

static int fields_reserve(Fields *f, Py_ssize_t more) {
    if (f->size + more <= f->capacity) return 0;
    Py_ssize_t capacity = (f->size + more) * 2;
    PyObject **items = PyMem_Malloc(capacity * sizeof(PyObject *));
    if (items == NULL) { PyErr_NoMemory(); return -1; }
    memcpy(items, f->items, f->size * sizeof(PyObject *));
    if (f->items != f->inline_items) PyMem_Free(f->items);
    f->items = items; f->capacity = capacity;
    return 0;
}

static void fields_free(Fields *f) {
    for (Py_ssize_t i = 0; i < f->size; i++) Py_DECREF(f->items[i]);
    if (f->items != f->inline_items) PyMem_Free(f->items);
    f->size = 0; f->items = f->inline_items;
}

static int fields_extend_tuple(Fields *f, PyObject *tuple) {
    Py_ssize_t n = PyTuple_GET_SIZE(tuple);
    if (fields_reserve(f, n) < 0) return -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyTuple_GET_ITEM(tuple, i);
        Py_INCREF(item);
        f->items[f->size++] = item;
    }
    return 0;
}

static int fields_extend_sequence(Fields *f, PyObject *seq) {
    PyObject *tuple = PySequence_Tuple(seq);
    if (tuple == NULL) return -1;
    int status = fields_extend_tuple(f, tuple);
    Py_DECREF(tuple);
    return status;
}

static int fields_tensor(Fields *f, PyObject *tensor, PyObject *path) {
    if (fields_reserve(f, 6) < 0) return -1;
    if (tensor_fields(tensor, path, f->items + f->size) < 0) return -1;
    f->size += 6;
    return 0;
}

/* The tensor's raw entry as an exact tuple. */
static PyObject *tensor_entry(PyObject *tensor, PyObject *path) {
    PyObject *items[6];
    if (tensor_fields(tensor, path, items) < 0) return NULL;
    PyObject *entry = PyTuple_New(6);
    if (entry == NULL) { for (int i = 0; i < 6; i++) Py_DECREF(items[i]); return NULL; }
    for (int i = 0; i < 6; i++) PyTuple_SET_ITEM(entry, i, items[i]);
    return entry;
}

/* source.library_code[id(code)], computed by is_library_code on a miss; -1 on error. */
static int library(PyCodeObject *code) {
    PyObject *key = PyLong_FromVoidPtr(code);
    if (key == NULL) return -1;
    PyObject *known = PyDict_GetItemWithError(library_code, key);
    Py_DECREF(key);
    if (known == NULL) {
        if (PyErr_Occurred()) return -1;
        known = PyObject_CallOneArg(is_library_code, (PyObject *)code);
        if (known == NULL) return -1;
        int skip = PyObject_IsTrue(known);
        Py_DECREF(known);
        return skip;
    }
    return PyObject_IsTrue(known);
}

/* The first frame at or above `frame` outside library code (a new reference), NULL with no error
 * when there is none. `frame` is borrowed. */
static PyFrameObject *user_frame(PyFrameObject *frame) {
    Py_XINCREF(frame);
    while (frame != NULL) {
        PyCodeObject *code = PyFrame_GetCode(frame);
        int skip = library(code);
        Py_DECREF(code);
        if (skip < 0) { Py_DECREF(frame); return NULL; }
        if (!skip) return frame;
        PyFrameObject *back = PyFrame_GetBack(frame);
        Py_DECREF(frame);
        frame = back;
    }
    return NULL;
}

/* caller_at's cache, read first; caller_at(code, lasti, globals) on a miss (a new reference). */
static PyObject *caller_for(PyFrameObject *frame, PyObject *code, PyObject *lasti) {
    PyObject *globals = PyFrame_GetGlobals(frame);
    if (globals == NULL) return NULL;
    PyObject *key = PyLong_FromVoidPtr(code);
    if (key == NULL) { Py_DECREF(globals); return NULL; }
    PyObject *by_offset = PyDict_GetItemWithError(callers, key);
    Py_DECREF(key);
    PyObject *call = NULL;
    if (by_offset != NULL && PyDict_CheckExact(by_offset)) call = PyDict_GetItemWithError(by_offset, lasti);
    if (PyErr_Occurred()) { Py_DECREF(globals); return NULL; }
    if (call != NULL && PyFunction_Check(call) && PyFunction_GET_GLOBALS(call) == globals) {
        Py_DECREF(globals);
        Py_INCREF(call);
        return call;
    }
    PyObject *args[3] = {code, lasti, globals};
    call = PyObject_Vectorcall(caller_at, args, 3, NULL);
    Py_DECREF(globals);
    return call;
}

static PyObject *call_func(PyObject *func, PyObject *args, PyObject *kwargs) {
    if (kwargs != NULL && kwargs != Py_None && PyDict_GET_SIZE(kwargs)) return PyObject_Call(func, args, kwargs);
    return PyObject_Call(func, args, NULL);
}

/* The members the hot paths read have the types the Python code gives them (else: Python path). */
static inline int consistent(Base *self) {
    return self->stack && PyList_CheckExact(self->stack) && self->open_starts && PyList_CheckExact(self->open_starts)
        && self->op_raw && PyList_CheckExact(self->op_raw) && self->call_raw && PyList_CheckExact(self->call_raw)
        && self->numbers && PyDict_CheckExact(self->numbers) && self->params && PyDict_CheckExact(self->params)
        && self->paths && PyDict_CheckExact(self->paths) && self->calls && PyDict_CheckExact(self->calls)
        && self->notes && PyDict_CheckExact(self->notes) && self->values && PyDict_CheckExact(self->values)
        && self->indirect_calls && PySet_CheckExact(self->indirect_calls)
        && self->top_op && PyTuple_CheckExact(self->top_op) && self->module_entered && PyTuple_CheckExact(self->module_entered)
        && self->root_entered && PyTuple_CheckExact(self->root_entered)
        && self->root_exited && PyTuple_CheckExact(self->root_exited);
}

/* --- the op body ----------------------------------------------------------------------------- */

/* Hand the whole op to the Python implementation (Recorder.__torch_function__, called from the
 * shim's frame as the C code is: it finds the same user frame). */
static PyObject *python_op_call(PyObject *self, PyObject *const *args) {
    PyObject *stack[5] = {self, args[0], args[1], args[2], args[3]};
    return PyObject_Vectorcall(python_op, stack, 5, NULL);
}

/* _record_op(func, types, args, kwargs): the op body, called by CompiledRecorder.__torch_function__
 * (a Python shim torch.compile can trace) once it found torch.compile not tracing. */
static PyObject *Base_record_op(Base *self, PyObject *const *fargs, Py_ssize_t nargs) {
    if (!configured || nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "_record_op(func, types, args, kwargs) of a configured _hotpath");
        return NULL;
    }
    PyObject *func = fargs[0], *args = fargs[2], *kwargs = fargs[3];
    if (!PyTuple_CheckExact(args) || (kwargs != Py_None && !PyDict_CheckExact(kwargs)) || !consistent(self))
        return python_op_call((PyObject *)self, fargs);
    int skip = PySet_Contains(not_ops, func);
    if (skip < 0) return NULL;
    if (skip) return call_func(func, args, kwargs);

    PyFrameObject *shim = PyEval_GetFrame(); /* borrowed: the shim's; above it, the frame that called the op */
    PyFrameObject *caller = shim != NULL ? PyFrame_GetBack(shim) : NULL;
    PyFrameObject *frame = user_frame(caller);
    Py_XDECREF(caller); /* the interpreter holds the frame object of a running frame: still valid below */
    if (frame == NULL && PyErr_Occurred()) return NULL;
    Py_ssize_t depth = PyList_GET_SIZE(self->stack);
    if (frame != caller && depth == 0 && self->foreign_calls == 0 && caller != NULL) {
        PyObject *internal = PyObject_CallOneArg(called_by_torch_internals, (PyObject *)caller);
        if (internal == NULL) { Py_XDECREF(frame); return NULL; }
        int by_torch = PyObject_IsTrue(internal);
        Py_DECREF(internal);
        if (by_torch) { Py_XDECREF(frame); return call_func(func, args, kwargs); }
    }

    Fields inputs;
    fields_init(&inputs);
    PyObject *result = NULL, *code = NULL, *lasti = NULL, *call = NULL, *number = NULL, *module_index = NULL;
    PyObject *entry = NULL;
    Py_ssize_t n_args = PyTuple_GET_SIZE(args);
    Py_ssize_t n_kw = kwargs != Py_None ? PyDict_GET_SIZE(kwargs) : 0;
    PyObject *kw_values = n_kw ? PyDict_Values(kwargs) : NULL;
    if (n_kw && kw_values == NULL) goto fail;
    for (Py_ssize_t i = 0; i < n_args + n_kw; i++) {
        PyObject *value = i < n_args ? PyTuple_GET_ITEM(args, i) : PyList_GET_ITEM(kw_values, i - n_args);
        int tensor = is_tensor(value);
        if (tensor < 0) goto unreadable;
        if (tensor) {
            if (value == self->last && self->last_entry != NULL && PyTuple_CheckExact(self->last_entry)) {
                if (fields_extend_tuple(&inputs, self->last_entry) < 0) goto unreadable;
            } else if ((PyObject *)Py_TYPE(value) == ParameterType) {
                PyObject *key = PyLong_FromVoidPtr(value);
                if (key == NULL) goto unreadable;
                PyObject *known = PyDict_GetItemWithError(self->params, key);
                if (known != NULL) {
                    Py_DECREF(key);
                    if (fields_extend_tuple(&inputs, PyTuple_GET_ITEM(known, 0)) < 0) goto unreadable;
                } else {
                    PyObject *made = PyErr_Occurred() ? NULL : tensor_entry(value, s_empty);
                    PyObject *pair = made ? PyTuple_Pack(2, made, value) : NULL;
                    int stored = pair ? PyDict_SetItem(self->params, key, pair) : -1;
                    Py_DECREF(key); Py_XDECREF(pair);
                    if (stored < 0 || fields_extend_tuple(&inputs, made) < 0) { Py_XDECREF(made); goto unreadable; }
                    Py_DECREF(made);
                }
            } else if (fields_tensor(&inputs, value, s_empty) < 0) goto unreadable;
        } else if (PyList_CheckExact(value) || PyTuple_CheckExact(value)) {
            PyObject *items = PySequence_Fast(value, "");
            if (items == NULL) goto unreadable;
            for (Py_ssize_t j = 0; j < PySequence_Fast_GET_SIZE(items); j++) {
                PyObject *item = PySequence_Fast_GET_ITEM(items, j);
                int is = is_tensor(item);
                if (is < 0 || (is && fields_tensor(&inputs, item, s_empty) < 0)) { Py_DECREF(items); goto unreadable; }
            }
            Py_DECREF(items);
        }
    }
    Py_CLEAR(kw_values);

    number = PyDict_GetItemWithError(self->numbers, func);
    if (number != NULL) Py_INCREF(number);
    else {
        PyObject *ops = PyErr_Occurred() ? NULL : PyObject_GetAttr((PyObject *)self, s_ops);
        number = ops ? PyObject_CallMethodOneArg(ops, s_number, func) : NULL;
        Py_XDECREF(ops);
        if (number == NULL) goto fail;
    }
    Py_ssize_t index = PyList_GET_SIZE(self->op_raw);
    module_index = depth ? PyList_GET_ITEM(self->stack, depth - 1) : Py_None;
    Py_INCREF(module_index);
    if (frame != NULL) {
        code = (PyObject *)PyFrame_GetCode(frame);
        lasti = PyLong_FromLong(PyFrame_GetLasti(frame));
        if (lasti == NULL || (call = caller_for(frame, code, lasti)) == NULL) goto fail;
    } else {
        code = Py_NewRef(Py_None);
        lasti = PyLong_FromLong(-1);
        call = Py_NewRef(no_frame_call);
    }
    Py_CLEAR(frame);
    if (depth == 0 && inputs.size && PyTuple_GET_SIZE(self->top_op)) {
        PyObject *at = PyLong_FromSsize_t(index);
        if (at == NULL) goto fail;
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(self->top_op); i++) {
            PyObject *heard = PyObject_CallFunctionObjArgs(PyTuple_GET_ITEM(self->top_op, i), at, args, kwargs, NULL);
            if (heard == NULL) { Py_DECREF(at); goto fail; }
            Py_DECREF(heard);
        }
        Py_DECREF(at);
    }

    {
        PyObject *call_args[3] = {func, args, kwargs};
        result = PyObject_Vectorcall(call, call_args, 3, NULL); /* at the user's line: warnings name it */
    }
    Py_ssize_t n_inputs = inputs.size;
    if (result == NULL) { /* the op raised: record it failed, tell the listeners, re-raise */
        PyObject *type, *error, *traceback;
        PyErr_Fetch(&type, &error, &traceback);
        PyErr_NormalizeException(&type, &error, &traceback);
        if (traceback != NULL) PyException_SetTraceback(error, traceback);
        entry = PyTuple_New(6 + n_inputs);
        if (entry == NULL) { Py_XDECREF(type); Py_XDECREF(error); Py_XDECREF(traceback); goto fail; }
        PyObject *head[6] = {number, module_index, code, lasti, Py_True, NULL};
        head[5] = PyLong_FromSsize_t(n_inputs);
        for (int i = 0; i < 5; i++) { Py_INCREF(head[i]); PyTuple_SET_ITEM(entry, i, head[i]); }
        PyTuple_SET_ITEM(entry, 5, head[5]);
        for (Py_ssize_t i = 0; i < n_inputs; i++) PyTuple_SET_ITEM(entry, 6 + i, inputs.items[i]);
        inputs.size = 0;
        int appended = PyList_Append(self->op_raw, entry);
        Py_CLEAR(entry);
        PyObject *at = appended < 0 ? NULL : PyLong_FromSsize_t(index);
        PyObject *heard = at ? PyObject_CallMethodObjArgs((PyObject *)self, s_record_failure, at, args, kwargs, error, NULL) : NULL;
        Py_XDECREF(at);
        if (heard == NULL) { /* a listener raised: its error propagates, the op's as its context */
            PyObject *type2, *error2, *traceback2;
            PyErr_Fetch(&type2, &error2, &traceback2);
            PyErr_NormalizeException(&type2, &error2, &traceback2);
            if (traceback2 != NULL) PyException_SetTraceback(error2, traceback2);
            if (error2 != error) PyException_SetContext(error2, Py_NewRef(error));
            Py_XDECREF(type); Py_XDECREF(error); Py_XDECREF(traceback);
            PyErr_Restore(type2, error2, traceback2);
            goto fail;
        }
        Py_DECREF(heard);
        PyErr_Restore(type, error, traceback);
        goto fail;
    }

    Fields outputs;
    fields_init(&outputs);
    int read = 0;
    int tensor = is_tensor(result);
    if (tensor < 0) read = -1;
    else if (tensor) {
        PyObject *out = tensor_entry(result, s_empty);
        if (out == NULL) read = -1;
        else {
            Py_XSETREF(self->last_entry, out);
            Py_INCREF(result);
            Py_XSETREF(self->last, result);
            read = fields_extend_tuple(&outputs, out);
        }
    } else if (PyList_Check(result) || PyTuple_Check(result)) {
        PyObject *items = PySequence_Fast(result, "");
        if (items == NULL) read = -1;
        for (Py_ssize_t i = 0; read == 0 && i < PySequence_Fast_GET_SIZE(items); i++) {
            PyObject *item = PySequence_Fast_GET_ITEM(items, i);
            int is = is_tensor(item);
            if (is < 0) { read = -1; break; }
            if (!is) continue;
            PyObject *path = i < 16 ? Py_NewRef(tensor_paths[i]) : PyUnicode_FromFormat("[%zd]", i);
            if (path == NULL || fields_tensor(&outputs, item, path) < 0) read = -1;
            Py_XDECREF(path);
        }
        Py_XDECREF(items);
    } else {
        int valued = PySet_Contains(value_ops, func);
        if (valued < 0) read = -1;
        else if (valued) {
            PyObject *at = PyLong_FromSsize_t(index);
            read = at ? PyDict_SetItem(self->values, at, result) : -1;
            Py_XDECREF(at);
        }
    }
    if (read < 0) {
        if (!PyErr_ExceptionMatches(PyExc_RuntimeError)) { fields_free(&outputs); goto fail; }
        PyErr_Clear(); /* a nested tensor: read it the slow way */
        fields_free(&outputs);
        PyObject *slow = PyObject_CallOneArg(raw_tensors, result);
        if (slow == NULL || fields_extend_sequence(&outputs, slow) < 0) { Py_XDECREF(slow); fields_free(&outputs); goto fail; }
        Py_DECREF(slow);
    }
    entry = PyTuple_New(6 + n_inputs + outputs.size);
    if (entry == NULL) { fields_free(&outputs); goto fail; }
    {
        PyObject *head[6] = {number, module_index, code, lasti, Py_False, NULL};
        for (int i = 0; i < 5; i++) { Py_INCREF(head[i]); PyTuple_SET_ITEM(entry, i, head[i]); }
        PyObject *n = PyLong_FromSsize_t(n_inputs);
        if (n == NULL) { Py_DECREF(entry); entry = NULL; fields_free(&outputs); goto fail; }
        PyTuple_SET_ITEM(entry, 5, n);
    }
    for (Py_ssize_t i = 0; i < n_inputs; i++) PyTuple_SET_ITEM(entry, 6 + i, inputs.items[i]);
    inputs.size = 0;
    for (Py_ssize_t i = 0; i < outputs.size; i++) PyTuple_SET_ITEM(entry, 6 + n_inputs + i, outputs.items[i]);
    outputs.size = 0;
    fields_free(&outputs);
    if (PyList_Append(self->op_raw, entry) < 0) goto fail;
    Py_DECREF(entry);
    fields_free(&inputs);
    Py_DECREF(number); Py_DECREF(module_index); Py_DECREF(code); Py_DECREF(lasti); Py_DECREF(call);
    return result;

unreadable:
    if (PyErr_ExceptionMatches(PyExc_RuntimeError)) {
        /* an input's metadata could not be read (a tensor without sizes): the Python path reads it */
        PyErr_Clear();
        Py_XDECREF(kw_values);
        Py_XDECREF(frame);
        fields_free(&inputs);
        return python_op_call((PyObject *)self, fargs);
    }
fail:
    Py_XDECREF(kw_values);
    Py_XDECREF(frame);
    fields_free(&inputs);
    Py_XDECREF(entry);
    Py_XDECREF(result);
    Py_XDECREF(number); Py_XDECREF(module_index); Py_XDECREF(code); Py_XDECREF(lasti); Py_XDECREF(call);
    return NULL;
}

/* --- a module call begins and ends ------------------------------------------------------- */

/* The frame `steps` frames above `frame` (new reference; NULL, no error, when the stack is shallower). */
static PyFrameObject *frame_above(PyFrameObject *frame, Py_ssize_t steps) {
    Py_XINCREF(frame);
    for (Py_ssize_t i = 0; i < steps && frame != NULL; i++) {
        PyFrameObject *back = PyFrame_GetBack(frame);
        Py_DECREF(frame);
        frame = back;
    }
    return frame;
}

/* _enter_hook(module, args): a module call begins (Recorder._enter_module's body), called by
 * _private/module_calls.py's stand-in for Module._call_impl once it found torch.compile not tracing. */
static PyObject *Base_enter_hook(Base *self, PyObject *const *args, Py_ssize_t nargs) {
    if (!configured || nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "_enter_hook(module, args) of a configured _hotpath");
        return NULL;
    }
    if (PyThread_get_thread_ident() != self->thread) Py_RETURN_NONE;
    if (!consistent(self)) return PyObject_CallMethodObjArgs((PyObject *)self, s_enter_module, args[0], args[1], NULL);
    PyObject *module = args[0], *margs = args[1];
    PyObject *key = PyLong_FromVoidPtr(module);
    if (key == NULL) return NULL;
    PyObject *path = PyDict_GetItemWithError(self->paths, key);
    if (path != NULL) Py_INCREF(path);
    else {
        if (PyErr_Occurred() || (path = PyObject_CallMethodOneArg((PyObject *)self, s_first_call, module)) == NULL) {
            Py_DECREF(key);
            return NULL;
        }
        if (path == Py_None) { Py_DECREF(key); return path; } /* not the model's: not recorded */
    }
    PyObject *start = NULL, *inputs = NULL, *count = NULL, *index_obj = NULL;
    PyFrameObject *called_from = NULL, *frame = NULL, *outer = NULL;
    PyObject *known = PyDict_GetItemWithError(self->calls, key);
    if (known == NULL && PyErr_Occurred()) goto fail;
    count = known ? PyNumber_Add(known, one) : PyLong_FromLong(1);
    if (count == NULL || PyDict_SetItem(self->calls, key, count) < 0) goto fail;

    /* torch's Module.__call__ frame: enter_to_module_call frames above the one that called this body
     * (held by the interpreter while it runs), else found by a walk */
    PyFrameObject *top = PyEval_GetFrame();
    called_from = frame_above(top, enter_to_module_call);
    if (called_from != NULL) {
        PyCodeObject *code = PyFrame_GetCode(called_from);
        int ours = (PyObject *)code == module_call_code;
        Py_DECREF(code);
        if (!ours) Py_CLEAR(called_from);
    }
    if (called_from == NULL) {
        PyObject *found = PyObject_CallOneArg(module_call_frame, top ? (PyObject *)top : Py_None);
        if (found == NULL) goto fail;
        if (found == Py_None) Py_DECREF(found);
        else called_from = (PyFrameObject *)found;
    }
    outer = called_from ? PyFrame_GetBack(called_from) : (PyFrameObject *)Py_XNewRef(top);
    frame = user_frame(outer);
    if (frame == NULL && PyErr_Occurred()) goto fail;
    Py_ssize_t index = PyList_GET_SIZE(self->call_raw);
    index_obj = PyLong_FromSsize_t(index);
    if (index_obj == NULL) goto fail;
    if (frame == NULL || called_from == NULL || outer != frame) {
        if (PySet_Add(self->indirect_calls, index_obj) < 0) goto fail;
    }
    PyObject *last = self->last;
    if (last != NULL && last != Py_None && PyTuple_CheckExact(margs) && PyTuple_GET_SIZE(margs) == 1
        && PyTuple_GET_ITEM(margs, 0) == last && self->last_entry && PyTuple_CheckExact(self->last_entry)
        && PyTuple_GET_SIZE(self->last_entry) == 6) { /* most often the last op's output: known */
        inputs = PyTuple_New(6);
        if (inputs == NULL) goto fail;
        for (int i = 0; i < 5; i++) PyTuple_SET_ITEM(inputs, i, Py_NewRef(PyTuple_GET_ITEM(self->last_entry, i)));
        PyTuple_SET_ITEM(inputs, 5, Py_NewRef(s_path0));
    } else {
        PyObject *read = PyObject_CallOneArg(raw_tensors_off, margs);
        if (read == NULL) goto fail;
        inputs = PySequence_Tuple(read);
        Py_DECREF(read);
        if (inputs == NULL) goto fail;
    }
    Py_ssize_t depth = PyList_GET_SIZE(self->stack), n = PyTuple_GET_SIZE(inputs);
    PyObject *parent = depth ? PyList_GET_ITEM(self->stack, depth - 1) : Py_None;
    start = PyTuple_New(10 + n);
    if (start == NULL) goto fail;
    PyObject *head[10];
    head[0] = Py_NewRef(key);
    head[1] = Py_NewRef(path);
    head[2] = PyType_GetName(Py_TYPE(module));
    head[3] = Py_NewRef(count);
    head[4] = Py_NewRef(parent);
    head[5] = PyLong_FromSsize_t(depth);
    head[6] = PyLong_FromSsize_t(PyList_GET_SIZE(self->op_raw));
    head[7] = frame ? (PyObject *)PyFrame_GetCode(frame) : Py_NewRef(Py_None);
    head[8] = PyLong_FromLong(frame ? PyFrame_GetLasti(frame) : -1);
    head[9] = PyLong_FromSsize_t(n);
    for (int i = 0; i < 10; i++) PyTuple_SET_ITEM(start, i, head[i]);
    for (int i = 0; i < 10; i++) if (head[i] == NULL) goto fail;
    for (Py_ssize_t i = 0; i < n; i++) PyTuple_SET_ITEM(start, 10 + i, Py_NewRef(PyTuple_GET_ITEM(inputs, i)));
    if (PyList_Append(self->call_raw, start) < 0 || PyList_Append(self->stack, index_obj) < 0) goto fail;
    if (PyList_Append(self->open_starts, start) < 0) goto fail;
    int script = PyType_IsSubtype(Py_TYPE(module), (PyTypeObject *)ScriptModuleType); /* as the Python hook */
    if (script < 0) goto fail;
    if (script) {
        PyObject *named = PyUnicode_GET_LENGTH(path) ? Py_NewRef(path) : PyType_GetName(Py_TYPE(module));
        PyObject *note = named ? PyUnicode_FromFormat("%U is TorchScript: its ops run outside Python and are not recorded", named) : NULL;
        Py_XDECREF(named);
        if (note == NULL || PyDict_SetItem(self->notes, note, Py_None) < 0) { Py_XDECREF(note); goto fail; }
        Py_DECREF(note);
    }
    if (PyTuple_GET_SIZE(self->module_entered) || (depth == 0 && PyTuple_GET_SIZE(self->root_entered))) {
        PyObject *heard = PyObject_CallMethodObjArgs((PyObject *)self, s_hear_entered, index_obj, module, margs,
                                                     depth == 0 ? Py_True : Py_False, NULL);
        if (heard == NULL) goto fail;
        Py_DECREF(heard);
    }
    Py_DECREF(key); Py_DECREF(path); Py_DECREF(count); Py_DECREF(index_obj); Py_DECREF(inputs); Py_DECREF(start);
    Py_XDECREF(called_from); Py_XDECREF(outer); Py_XDECREF(frame);
    Py_RETURN_NONE;
fail:
    Py_DECREF(key); Py_DECREF(path); Py_XDECREF(count); Py_XDECREF(index_obj); Py_XDECREF(inputs); Py_XDECREF(start);
    Py_XDECREF(called_from); Py_XDECREF(outer); Py_XDECREF(frame);
    return NULL;
}

/* _exit_hook(module, args, *kwargs_and_output): a module call ended (Recorder._leave_module's body) in its
 * common case (the innermost call ends, no listener hears it, no keyword tensors), called as _enter_hook. */
static PyObject *Base_exit_hook(Base *self, PyObject *const *args, Py_ssize_t nargs) {
    if (!configured || nargs < 3) {
        PyErr_SetString(PyExc_TypeError, "_exit_hook(module, args, *kwargs_and_output) of a configured _hotpath");
        return NULL;
    }
    if (PyThread_get_thread_ident() != self->thread) Py_RETURN_NONE;
    PyObject *module = args[0];
    Py_ssize_t n_starts = consistent(self) ? PyList_GET_SIZE(self->open_starts) : 0;
    PyObject *innermost = n_starts ? PyList_GET_ITEM(self->open_starts, n_starts - 1) : NULL;
    PyObject *output = args[nargs - 1];
    PyObject *keywords = nargs == 4 ? args[2] : Py_None;
    int common = innermost != NULL && PyTuple_CheckExact(innermost) && PyTuple_GET_SIZE(innermost) >= 10
        && PyLong_CheckExact(PyTuple_GET_ITEM(innermost, 0)) && PyLong_AsVoidPtr(PyTuple_GET_ITEM(innermost, 0)) == module
        && !(n_starts == 1 && PyTuple_GET_SIZE(self->root_exited))
        && (keywords == Py_None || (PyDict_CheckExact(keywords) && PyDict_GET_SIZE(keywords) == 0))
        && PyList_GET_SIZE(self->stack) == n_starts;
    if (!common) { /* the Python code: listeners, keyword tensors, calls that did not end innermost-first */
        if (PyErr_Occurred()) return NULL;
        PyObject *rest = PyTuple_New(nargs - 2);
        if (rest == NULL) return NULL;
        for (Py_ssize_t i = 2; i < nargs; i++) PyTuple_SET_ITEM(rest, i - 2, Py_NewRef(args[i]));
        PyObject *result = PyObject_CallMethodObjArgs((PyObject *)self, s_exit_module, module, args[1], rest, NULL);
        Py_DECREF(rest);
        return result;
    }
    int failed = 0;
    if (output == Py_None) {
        PyObject *handled = PyErr_GetHandledException();
        failed = handled != NULL && handled != Py_None;
        Py_XDECREF(handled);
    }
    PyObject *outputs;
    if (output == self->last && output != Py_None && self->last_entry && PyTuple_CheckExact(self->last_entry))
        outputs = Py_NewRef(self->last_entry); /* most often: the last op's output, its entry made */
    else {
        PyObject *read = PyObject_CallOneArg(raw_tensors_off, output);
        if (read == NULL) return NULL;
        outputs = PySequence_Tuple(read);
        Py_DECREF(read);
        if (outputs == NULL) return NULL;
    }
    PyObject *start = Py_NewRef(innermost);
    PyObject *index = Py_NewRef(PyList_GET_ITEM(self->stack, n_starts - 1));
    Py_ssize_t size = PyTuple_GET_SIZE(start), n_out = PyTuple_GET_SIZE(outputs);
    PyObject *ended = PyTuple_New(size + 2 + n_out);
    PyObject *end_op = PyLong_FromSsize_t(PyList_GET_SIZE(self->op_raw));
    Py_ssize_t at = PyLong_AsSsize_t(index);
    if (ended == NULL || end_op == NULL || at < 0 || at >= PyList_GET_SIZE(self->call_raw)) {
        Py_XDECREF(ended); Py_XDECREF(end_op); Py_DECREF(start); Py_DECREF(index); Py_DECREF(outputs);
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_IndexError, "module call index out of range");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < size; i++) PyTuple_SET_ITEM(ended, i, Py_NewRef(PyTuple_GET_ITEM(start, i)));
    PyTuple_SET_ITEM(ended, size, end_op);
    PyTuple_SET_ITEM(ended, size + 1, Py_NewRef(failed ? Py_True : Py_False));
    for (Py_ssize_t i = 0; i < n_out; i++) PyTuple_SET_ITEM(ended, size + 2 + i, Py_NewRef(PyTuple_GET_ITEM(outputs, i)));
    Py_DECREF(outputs);
    int status = PyList_SetSlice(self->stack, n_starts - 1, n_starts, NULL);
    if (status == 0) status = PyList_SetSlice(self->open_starts, n_starts - 1, n_starts, NULL);
    if (status == 0) status = PyList_SetItem(self->call_raw, at, ended); /* steals ended */
    else Py_DECREF(ended);
    Py_DECREF(start); Py_DECREF(index);
    if (status < 0) return NULL;
    Py_RETURN_NONE;
}

/* --- the type and the module ------------------------------------------------------------------ */

static PyMethodDef Base_methods[] = {
    {"_record_op", (PyCFunction)(void (*)(void))Base_record_op, METH_FASTCALL,
     "_record_op(func, types, args, kwargs): Recorder.__torch_function__'s body."},
    {"_enter_hook", (PyCFunction)(void (*)(void))Base_enter_hook, METH_FASTCALL,
     "_enter_hook(module, args): Recorder._enter_module's body."},
    {"_exit_hook", (PyCFunction)(void (*)(void))Base_exit_hook, METH_FASTCALL,
     "_exit_hook(module, args, *kwargs_and_output): Recorder._leave_module's body."},
    {NULL, NULL, 0, NULL},
};

#define MEMBER(name, field) {name, T_OBJECT, offsetof(Base, field), 0, NULL}
static PyMemberDef Base_members[] = {
    MEMBER("_last", last), MEMBER("_last_entry", last_entry), MEMBER("_stack", stack),
    MEMBER("_open_starts", open_starts), MEMBER("_op_raw", op_raw), MEMBER("_call_raw", call_raw),
    MEMBER("_numbers", numbers), MEMBER("_params", params), MEMBER("_paths", paths), MEMBER("_calls", calls),
    MEMBER("notes", notes), MEMBER("values", values), MEMBER("indirect_calls", indirect_calls),
    MEMBER("_top_op", top_op), MEMBER("_module_entered", module_entered),
    MEMBER("_root_entered", root_entered), MEMBER("_root_exited", root_exited),
    {"_foreign_calls", T_PYSSIZET, offsetof(Base, foreign_calls), 0, NULL},
    {"thread", T_ULONG, offsetof(Base, thread), 0, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject BaseType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "shapetrace.capture._hotpath.RecorderBase",
    .tp_doc = "The recorder's state and hot paths in C (see shapetrace.capture.recorder).",
    .tp_basicsize = sizeof(Base),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_dealloc = (destructor)Base_dealloc,
    .tp_traverse = (traverseproc)Base_traverse,
    .tp_clear = (inquiry)Base_clear,
    .tp_methods = Base_methods,
    .tp_members = Base_members,
};

/* The getter `attribute->name` has on torch.Tensor, when it is the same getset descriptor on nn.Parameter
 * (read on the classes: a descriptor read on its class is itself); else none, and no error. */
static void find_getter(TensorGetter *attribute) {
    attribute->get = NULL;
    attribute->closure = NULL;
    PyObject *on_tensor = PyObject_GetAttr(TensorType, attribute->name);
    PyObject *on_parameter = on_tensor ? PyObject_GetAttr(ParameterType, attribute->name) : NULL;
    if (on_tensor != NULL && on_parameter == on_tensor && Py_IS_TYPE(on_tensor, &PyGetSetDescr_Type)) {
        attribute->get = ((PyGetSetDescrObject *)on_tensor)->d_getset->get;
        attribute->closure = ((PyGetSetDescrObject *)on_tensor)->d_getset->closure;
    }
    Py_XDECREF(on_tensor);
    Py_XDECREF(on_parameter);
    PyErr_Clear();
}

static PyObject *configure(PyObject *module, PyObject *args, PyObject *kwargs) {
    static char *names[] = {
        "tensor", "parameter", "script_module", "not_ops", "value_ops", "library_code", "callers",
        "is_library_code", "called_by_torch_internals", "caller_at", "module_call_frame", "module_call_code",
        "enter_to_module_call", "call", "python_op", "raw_tensors", "raw_tensors_off", NULL,
    };
    enum { N = 16 };
    PyObject *items[N];
    Py_ssize_t depth;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|$OOOO!O!O!O!OOOOOnOOOO", names,
            &items[0], &items[1], &items[2], &PyFrozenSet_Type, &items[3], &PyFrozenSet_Type, &items[4],
            &PyDict_Type, &items[5], &PyDict_Type, &items[6], &items[7], &items[8], &items[9], &items[10],
            &items[11], &depth, &items[12], &items[13], &items[14], &items[15]))
        return NULL;
    if (PyTuple_GET_SIZE(args) + (kwargs ? PyDict_GET_SIZE(kwargs) : 0) != N + 1) {
        PyErr_SetString(PyExc_TypeError, "configure() takes every one of its keyword arguments");
        return NULL;
    }
    PyObject **slots[N] = {
        &TensorType, &ParameterType, &ScriptModuleType, &not_ops, &value_ops, &library_code, &callers,
        &is_library_code, &called_by_torch_internals, &caller_at, &module_call_frame, &module_call_code,
        &no_frame_call, &python_op, &raw_tensors, &raw_tensors_off,
    };
    for (int i = 0; i < N; i++) Py_XSETREF(*slots[i], Py_NewRef(items[i]));
    enter_to_module_call = depth;
    TensorGetter *getters[4] = {&read_shape, &read_dtype, &read_device, &read_requires_grad};
    for (int i = 0; i < 4; i++) find_getter(getters[i]);
    configured = 1;
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"configure", (PyCFunction)(void (*)(void))configure, METH_VARARGS | METH_KEYWORDS,
     "Hand the hot paths the objects they use (shapetrace.capture.recorder does, once)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef hotpath_module = {
    PyModuleDef_HEAD_INIT, "shapetrace.capture._hotpath",
    "The recorder's hot paths in C; shapetrace.capture.recorder falls back to Python without it.", -1,
    module_methods,
};

PyMODINIT_FUNC PyInit__hotpath(void) {
    if (PyType_Ready(&BaseType) < 0) return NULL;
    s_empty = PyUnicode_InternFromString("");
    s_path0 = PyUnicode_InternFromString("[0]");
    one = PyLong_FromLong(1);
    read_shape.name = PyUnicode_InternFromString("shape");
    read_dtype.name = PyUnicode_InternFromString("dtype");
    read_device.name = PyUnicode_InternFromString("device");
    read_requires_grad.name = PyUnicode_InternFromString("requires_grad");
    s_enter_module = PyUnicode_InternFromString("_enter_module");
    s_exit_module = PyUnicode_InternFromString("_exit_module");
    s_hear_entered = PyUnicode_InternFromString("_hear_entered");
    s_record_failure = PyUnicode_InternFromString("_record_failure");
    s_first_call = PyUnicode_InternFromString("_first_call");
    s_ops = PyUnicode_InternFromString("ops");
    s_number = PyUnicode_InternFromString("number");
    if (!s_empty || !s_path0 || !one || !read_shape.name || !read_dtype.name || !read_device.name || !read_requires_grad.name || !s_enter_module || !s_exit_module || !s_hear_entered
        || !s_record_failure || !s_first_call || !s_ops || !s_number)
        return NULL;
    for (int i = 0; i < 16; i++) {
        tensor_paths[i] = PyUnicode_FromFormat("[%d]", i);
        if (tensor_paths[i] == NULL) return NULL;
    }
    PyObject *module = PyModule_Create(&hotpath_module);
    if (module == NULL) return NULL;
    if (PyModule_AddObjectRef(module, "RecorderBase", (PyObject *)&BaseType) < 0) { Py_DECREF(module); return NULL; }
    return module;
}
