/* Round a double to the nearest binary32 (ties to even), the cost ST pays on
   every REAL store. struct.pack/unpack does the same in ~170 ns; this is
   ~30 ns. Optional: plc_lang.rt_support falls back to struct without it. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static PyObject *f32(PyObject *self, PyObject *arg) {
    double d = PyFloat_AsDouble(arg);
    if (d == -1.0 && PyErr_Occurred())
        return NULL;
    /* IEC 60559 conversion: round to nearest even, overflow to +-inf */
    volatile float f = (float)d;
    return PyFloat_FromDouble((double)f);
}

static PyMethodDef methods[] = {
    {"f32", f32, METH_O, "Round a float to the nearest IEEE binary32 value."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_f32", NULL, -1, methods};

PyMODINIT_FUNC PyInit__f32(void) { return PyModule_Create(&module); }
