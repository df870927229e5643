"""The C every native program starts with: the scan context, fault exits
and the standard function blocks.

Each helper does what the Python backend does (plc_lang/rt_support.py,
plc_lang/values.py, plc_lang/stdlib/blocks.py), operation for operation, so
the two backends give bit-identical values and the same faults. Where Python
raises (a division by zero, NaN to an integer), the helper records the fault
in the context and longjmps to the entry point of the scan.
"""

PRELUDE = r"""
#include <stdint.h>
#include <stdbool.h>
#include <string.h>
#include <math.h>
#include <setjmp.h>
#include <stddef.h>

typedef struct {
    int64_t now_ms;
    int64_t now_ns;
    volatile int32_t *wd;      /* the watchdog raises it; loops test it */
    void *g;                   /* the configuration's globals */
    int32_t fault_kind;        /* GP_F_*, 0: none */
    int32_t fault_site;
    int64_t fault_i;           /* the offending integer (index, selector) */
    int64_t fault_j;
    double fault_f;
} GpCtx;

enum { GP_F_NONE, GP_F_INDEX, GP_F_DIV0, GP_F_WATCHDOG, GP_F_SUBRANGE, GP_F_MUX, GP_F_NAN_INT,
       GP_F_INF_INT, GP_F_DOMAIN, GP_F_FOR_STEP0 };

static __thread jmp_buf *gp_jb;

__attribute__((noreturn, noinline, cold))
static void gp_fault(GpCtx *c, int kind, int site, int64_t i, int64_t j, double f) {
    c->fault_kind = kind; c->fault_site = site; c->fault_i = i; c->fault_j = j; c->fault_f = f;
    longjmp(*gp_jb, 1);
}

#define GP_R32(x) ((double)(float)(x))
#define GP_WD(c, site) do { if (*(c)->wd) gp_fault((c), GP_F_WATCHDOG, (site), 0, 0, 0.0); } while (0)

static inline int64_t gp_idx(GpCtx *c, int64_t v, int64_t lo, int64_t hi, int site) {
    if (v < lo || v > hi) gp_fault(c, GP_F_INDEX, site, v, 0, 0.0);
    return v;
}
static inline int64_t gp_sub(GpCtx *c, int64_t v, int64_t lo, int64_t hi, int site) {
    if (v < lo || v > hi) gp_fault(c, GP_F_SUBRANGE, site, v, 0, 0.0);
    return v;
}
static inline double gp_fdiv(GpCtx *c, double a, double b, int site) {
    if (b == 0.0) gp_fault(c, GP_F_DIV0, site, 0, 0, 0.0);
    return a / b;
}
/* integer division truncating toward zero, MOD with the dividend's sign;
   the 64-bit minimum over -1 wraps (Python computes 2**63, then wraps) */
static inline int64_t gp_sdiv(GpCtx *c, int64_t a, int64_t b, int site) {
    if (b == 0) gp_fault(c, GP_F_DIV0, site, 0, 0, 0.0);
    if (b == -1) return (int64_t)(0 - (uint64_t)a);
    return a / b;
}
static inline int64_t gp_smod(GpCtx *c, int64_t a, int64_t b, int site) {
    if (b == 0) gp_fault(c, GP_F_DIV0, site, 0, 0, 0.0);
    if (b == -1) return 0;
    return a % b;
}
static inline uint64_t gp_udiv(GpCtx *c, uint64_t a, uint64_t b, int site) {
    if (b == 0) gp_fault(c, GP_F_DIV0, site, 0, 0, 0.0);
    return a / b;
}
static inline uint64_t gp_umod(GpCtx *c, uint64_t a, uint64_t b, int site) {
    if (b == 0) gp_fault(c, GP_F_DIV0, site, 0, 0, 0.0);
    return a % b;
}
/* an integral double to its value modulo 2**64 (Python's int, then a wrap) */
static inline uint64_t gp_mod64(double r) {
    if (r >= -9223372036854775808.0 && r < 9223372036854775808.0) return (uint64_t)(int64_t)r;
    double m = fmod(r, 18446744073709551616.0);
    if (m < 0) return 0 - (uint64_t)(-m);
    return (uint64_t)m;
}
/* Python round(): ties to even; NaN and infinity cannot become integers */
static inline uint64_t gp_round(GpCtx *c, double x, int site) {
    if (x != x) gp_fault(c, GP_F_NAN_INT, site, 0, 0, 0.0);
    if (isinf(x)) gp_fault(c, GP_F_INF_INT, site, 0, 0, 0.0);
    return gp_mod64(nearbyint(x));
}
static inline uint64_t gp_trunc(GpCtx *c, double x, int site) {
    if (x != x) gp_fault(c, GP_F_NAN_INT, site, 0, 0, 0.0);
    if (isinf(x)) gp_fault(c, GP_F_INF_INT, site, 0, 0, 0.0);
    return gp_mod64(trunc(x));
}
static inline double gp_sqrt(double x) { return x >= 0 ? sqrt(x) : NAN; }
static inline double gp_ln(double x) { return x > 0 ? log(x) : (x == 0 ? -INFINITY : NAN); }
static inline double gp_log(double x) { return x > 0 ? log10(x) : (x == 0 ? -INFINITY : NAN); }
static inline double gp_exp(double x) { return exp(x); }
static inline double gp_asin(double x) { return (x >= -1.0 && x <= 1.0) ? asin(x) : NAN; }
static inline double gp_acos(double x) { return (x >= -1.0 && x <= 1.0) ? acos(x) : NAN; }
static inline double gp_atan(double x) { return atan(x); }
/* Python's math.sin/cos/tan refuse an infinity (ValueError) */
static inline double gp_sin(GpCtx *c, double x, int site) {
    if (isinf(x)) gp_fault(c, GP_F_DOMAIN, site, 0, 0, 0.0);
    return sin(x);
}
static inline double gp_cos(GpCtx *c, double x, int site) {
    if (isinf(x)) gp_fault(c, GP_F_DOMAIN, site, 0, 0, 0.0);
    return cos(x);
}
static inline double gp_tan(GpCtx *c, double x, int site) {
    if (isinf(x)) gp_fault(c, GP_F_DOMAIN, site, 0, 0, 0.0);
    return tan(x);
}
static inline uint64_t gp_rol(uint64_t x, int64_t n, int bits) {
    uint64_t mask = bits == 64 ? ~(uint64_t)0 : (((uint64_t)1 << bits) - 1);
    n = ((n % bits) + bits) % bits;
    x &= mask;
    if (n == 0) return x;
    return ((x << n) | (x >> (bits - n))) & mask;
}
static inline uint64_t gp_ror(uint64_t x, int64_t n, int bits) {
    uint64_t mask = bits == 64 ? ~(uint64_t)0 : (((uint64_t)1 << bits) - 1);
    n = ((n % bits) + bits) % bits;
    x &= mask;
    if (n == 0) return x;
    return ((x >> n) | (x << (bits - n))) & mask;
}

/* ---- standard function blocks (plc_lang/stdlib/blocks.py); their structs come from STD_LAYOUT ---- */
@STD_STRUCTS@
static void B_TON_body(GpCtx *c, B_TON *p) {
    if (p->v_IN) {
        int64_t now = c->now_ms;
        if (!p->v_m_in__) { p->v_start__ = now; p->v_m_in__ = true; }
        int64_t et = now - p->v_start__, pt = p->v_PT;
        if (et >= pt) { p->v_Q = true; p->v_ET = pt; } else { p->v_Q = false; p->v_ET = et; }
    } else { p->v_m_in__ = false; p->v_Q = false; p->v_ET = 0; }
}
static void B_TOF_body(GpCtx *c, B_TOF *p) {
    if (p->v_IN) { p->v_m_in__ = true; p->v_Q = true; p->v_ET = 0; return; }
    int64_t now = c->now_ms;
    if (p->v_m_in__) { p->v_m_in__ = false; p->v_start__ = now; }
    if (p->v_Q) {
        int64_t et = now - p->v_start__, pt = p->v_PT;
        if (et >= pt) { p->v_Q = false; p->v_ET = pt; } else { p->v_ET = et; }
    }
}
static void B_TP_body(GpCtx *c, B_TP *p) {
    int64_t now = c->now_ms;
    bool rising = p->v_IN && !p->v_m_in__;
    p->v_m_in__ = p->v_IN;
    if (!p->v_Q && rising && p->v_ET == 0) { p->v_start__ = now; p->v_Q = true; }
    if (p->v_Q) {
        int64_t et = now - p->v_start__, pt = p->v_PT;
        if (et >= pt) { p->v_Q = false; p->v_ET = pt; } else { p->v_ET = et; }
    }
    if (!p->v_Q && !p->v_IN) p->v_ET = 0;
}
static void B_R_TRIG_body(GpCtx *c, B_R_TRIG *p) { (void)c; bool clk = p->v_CLK; p->v_Q = clk && !p->v_m__; p->v_m__ = clk; }
static void B_F_TRIG_body(GpCtx *c, B_F_TRIG *p) { (void)c; bool clk = p->v_CLK; p->v_Q = !clk && p->v_m__; p->v_m__ = clk; }
static void B_SR_body(GpCtx *c, B_SR *p) { (void)c; p->v_Q1 = p->v_S1 || (!p->v_R && p->v_Q1); }
static void B_RS_body(GpCtx *c, B_RS *p) { (void)c; p->v_Q1 = !p->v_R1 && (p->v_S || p->v_Q1); }
static void B_CTU_body(GpCtx *c, B_CTU *p) {
    (void)c;
    bool cu = p->v_CU;
    if (p->v_R) p->v_CV = 0;
    else if (cu && !p->v_m__ && p->v_CV < 32767) p->v_CV = (int16_t)(p->v_CV + 1);
    p->v_m__ = cu;
    p->v_Q = p->v_CV >= p->v_PV;
}
static void B_CTD_body(GpCtx *c, B_CTD *p) {
    (void)c;
    bool cd = p->v_CD;
    if (p->v_LD) p->v_CV = p->v_PV;
    else if (cd && !p->v_m__ && p->v_CV > -32768) p->v_CV = (int16_t)(p->v_CV - 1);
    p->v_m__ = cd;
    p->v_Q = p->v_CV <= 0;
}
static void B_CTUD_body(GpCtx *c, B_CTUD *p) {
    (void)c;
    bool cu = p->v_CU, cd = p->v_CD;
    if (p->v_R) p->v_CV = 0;
    else if (p->v_LD) p->v_CV = p->v_PV;
    else {
        if (cu && !p->v_mu__ && p->v_CV < 32767) p->v_CV = (int16_t)(p->v_CV + 1);
        if (cd && !p->v_md__ && p->v_CV > -32768) p->v_CV = (int16_t)(p->v_CV - 1);
    }
    p->v_mu__ = cu;
    p->v_md__ = cd;
    p->v_QU = p->v_CV >= p->v_PV;
    p->v_QD = p->v_CV <= 0;
}
"""

# standard block -> its fields, in the order of the Python classes' slots:
# (attribute, C type); the ctypes mirror is built from the same table
_TIMER = [("IN", "bool"), ("PT", "int64_t"), ("Q", "bool"), ("ET", "int64_t"),
          ("m_in__", "bool"), ("start__", "int64_t")]
_EDGE = [("CLK", "bool"), ("Q", "bool"), ("m__", "bool")]
STD_LAYOUT = {
    "TON": _TIMER, "TOF": _TIMER, "TP": _TIMER, "R_TRIG": _EDGE, "F_TRIG": _EDGE,
    "SR": [("S1", "bool"), ("R", "bool"), ("Q1", "bool")],
    "RS": [("S", "bool"), ("R1", "bool"), ("Q1", "bool")],
    "CTU": [("CU", "bool"), ("R", "bool"), ("PV", "int16_t"), ("Q", "bool"), ("CV", "int16_t"), ("m__", "bool")],
    "CTD": [("CD", "bool"), ("LD", "bool"), ("PV", "int16_t"), ("Q", "bool"), ("CV", "int16_t"), ("m__", "bool")],
    "CTUD": [("CU", "bool"), ("CD", "bool"), ("R", "bool"), ("LD", "bool"), ("PV", "int16_t"), ("QU", "bool"),
             ("QD", "bool"), ("CV", "int16_t"), ("mu__", "bool"), ("md__", "bool")],
}


def prelude() -> str:
    structs = []
    for name, fields in STD_LAYOUT.items():
        body = " ".join(f"{ct} v_{f};" for f, ct in fields)
        structs.append(f"typedef struct {{ {body} }} B_{name};")
    return PRELUDE.replace("@STD_STRUCTS@", "\n".join(structs))
