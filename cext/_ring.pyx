# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled ring buffer of GPIO edge records (see ``tessera.cext``).

All state lives in one C struct (``ring_t``) guarded
by a pthread mutex that is never held while touching a Python object, so:

- ``ring_push_nogil`` is callable from any thread with or without the GIL
  (a future native GPIO callback); the Python ``push`` calls it directly
  without releasing the GIL, which is safe because no critical section ever
  waits for the GIL while holding the mutex;
- ``wait`` releases the GIL; while the ring is hot (records taken within the
  last ``spin_us``) it polls the indices first, then sleeps on a
  CLOCK_MONOTONIC condition variable that ``push`` signals, after unlocking,
  only when someone sleeps (no syscall otherwise);
- ``pop_wait`` is ``wait`` then ``pop_many`` in one call (the consumer loop);
- ``pop_many`` copies a batch out under the lock into a scratch buffer, then
  builds the Python tuples after unlocking.
"""

from libc.errno cimport ETIMEDOUT
from libc.stdint cimport int32_t, int64_t, uint64_t
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memcpy
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec

MAX_CAPACITY = 1 << 24
DEFAULT_SPIN_US = 200.0  # see docs/input-path.md (hand-off latency): measured, not guessed
MAX_SPIN_US = 100000.0
cdef double MAX_WAIT_S = 1e8
cdef enum:
    SMALL_BATCH = 64  # records copied out on the stack (larger batches: one malloc)


cdef extern from "<pthread.h>" nogil:
    ctypedef struct pthread_mutex_t:
        pass
    ctypedef struct pthread_cond_t:
        pass


cdef struct record_t:
    int64_t t_ns
    int32_t pin
    int32_t kind
    int32_t value


cdef struct ring_t:
    record_t* buf
    uint64_t capacity
    uint64_t mask
    uint64_t head        # total records popped; next slot to read is head & mask
    uint64_t tail        # total records pushed; next slot to write is tail & mask
    uint64_t dropped
    uint64_t high_water
    int64_t spin_ns      # how long a consumer polls before sleeping, after its last take
    int64_t last_take_ns # CLOCK_MONOTONIC of the last pop that returned records
    int waiters
    int woken
    int closed
    pthread_mutex_t lock
    pthread_cond_t cond


cdef extern from "<pthread.h>" nogil:
    ctypedef struct pthread_mutexattr_t:
        pass
    ctypedef struct pthread_condattr_t:
        pass
    ctypedef struct pthread_attr_t:
        pass
    ctypedef unsigned long pthread_t

    int pthread_mutex_init(pthread_mutex_t* m, const pthread_mutexattr_t* a)
    int pthread_mutex_destroy(pthread_mutex_t* m)
    int pthread_mutex_lock(pthread_mutex_t* m)
    int pthread_mutex_unlock(pthread_mutex_t* m)
    int pthread_condattr_init(pthread_condattr_t* a)
    int pthread_condattr_setclock(pthread_condattr_t* a, int clock_id)
    int pthread_condattr_destroy(pthread_condattr_t* a)
    int pthread_cond_init(pthread_cond_t* c, const pthread_condattr_t* a)
    int pthread_cond_destroy(pthread_cond_t* c)
    int pthread_cond_wait(pthread_cond_t* c, pthread_mutex_t* m)
    int pthread_cond_timedwait(pthread_cond_t* c, pthread_mutex_t* m, const timespec* t)
    int pthread_cond_signal(pthread_cond_t* c)
    int pthread_cond_broadcast(pthread_cond_t* c)
    int pthread_create(pthread_t* t, const pthread_attr_t* a, void* (*f)(void*) noexcept nogil,
                       void* arg)
    int pthread_join(pthread_t t, void** ret)


# --------------------------------------------------------------------------- C level


cdef inline int64_t _now_ns() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <int64_t>ts.tv_sec * 1000000000 + ts.tv_nsec


cdef extern from *:
    """
    /* The consumer's spin reads the indices without the mutex; producers publish
       ``tail`` with a release store so a spinning reader sees the record first. */
    static inline uint64_t tessera_load_u64(const uint64_t* p) {
        return __atomic_load_n(p, __ATOMIC_ACQUIRE);
    }
    static inline void tessera_store_u64(uint64_t* p, uint64_t v) {
        __atomic_store_n(p, v, __ATOMIC_RELEASE);
    }
    static inline int tessera_load_int(const int* p) {
        return __atomic_load_n(p, __ATOMIC_ACQUIRE);
    }
    static inline void tessera_store_int(int* p, int v) {
        __atomic_store_n(p, v, __ATOMIC_RELEASE);
    }
    static inline void tessera_cpu_relax(void) {
    #if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
    #elif defined(__aarch64__) || (defined(__arm__) && __ARM_ARCH >= 7)
        __asm__ __volatile__("yield");
    #endif
    }
    """
    uint64_t tessera_load_u64(const uint64_t* p) noexcept nogil
    void tessera_store_u64(uint64_t* p, uint64_t v) noexcept nogil
    int tessera_load_int(const int* p) noexcept nogil
    void tessera_store_int(int* p, int v) noexcept nogil
    void tessera_cpu_relax() noexcept nogil


cdef int ring_push_nogil(ring_t* r, int64_t t_ns, int32_t pin, int32_t kind,
                         int32_t value) noexcept nogil:
    """Append one record; return 1, or 0 when full (the NEW record is dropped and counted)."""
    cdef uint64_t n
    cdef record_t* slot
    cdef int sleeping
    pthread_mutex_lock(&r.lock)
    n = r.tail - r.head
    if n >= r.capacity:
        r.dropped += 1
        pthread_mutex_unlock(&r.lock)
        return 0
    slot = &r.buf[r.tail & r.mask]
    slot.t_ns = t_ns
    slot.pin = pin
    slot.kind = kind
    slot.value = value
    tessera_store_u64(&r.tail, r.tail + 1)
    if n + 1 > r.high_water:
        r.high_water = n + 1
    sleeping = r.waiters
    pthread_mutex_unlock(&r.lock)
    # signalled after unlocking: the woken consumer does not run straight into a
    # mutex this thread still holds (one futex wake instead of wake, block, wake)
    if sleeping:
        pthread_cond_signal(&r.cond)
    return 1


cdef uint64_t _pop_into(ring_t* r, record_t* out, uint64_t max_n) noexcept nogil:
    """Copy up to max_n oldest records into ``out`` and remove them from the ring."""
    cdef uint64_t n, start, first
    pthread_mutex_lock(&r.lock)
    n = r.tail - r.head
    if n > max_n:
        n = max_n
    start = r.head & r.mask
    first = r.capacity - start
    if first > n:
        first = n
    memcpy(out, &r.buf[start], first * sizeof(record_t))
    if n > first:
        memcpy(&out[first], r.buf, (n - first) * sizeof(record_t))
    tessera_store_u64(&r.head, r.head + n)
    if n:
        r.last_take_ns = _now_ns()
    pthread_mutex_unlock(&r.lock)
    return n


cdef inline int _idle(ring_t* r) noexcept nogil:
    return (tessera_load_u64(&r.tail) == tessera_load_u64(&r.head)
            and not tessera_load_int(&r.woken) and not tessera_load_int(&r.closed))


cdef void _spin(ring_t* r, int64_t now, double timeout) noexcept nogil:
    """Poll (no lock, no syscall) while the ring is hot: until ``spin_ns`` after the
    consumer last took records, or the timeout, whichever is first. Edges come in
    bursts (contact bounce, a press then its release), and a consumer that is still
    running sees the next record without a futex wake-up and a reschedule."""
    cdef int64_t until = r.last_take_ns + r.spin_ns
    cdef int i = 0
    if r.spin_ns <= 0 or until <= now:
        return
    if timeout >= 0 and now + <int64_t>(timeout * 1e9) < until:
        until = now + <int64_t>(timeout * 1e9)
    while _idle(r):
        tessera_cpu_relax()
        i += 1
        if i & 63 == 0 and _now_ns() >= until:
            return


cdef int _wait(ring_t* r, double timeout) noexcept nogil:
    """Block until records are available, wake()/close(), or timeout (< 0: forever)."""
    cdef timespec deadline
    cdef int64_t ns, now = _now_ns()
    cdef int rc = 0, ready
    _spin(r, now, timeout)
    if timeout >= 0:
        ns = now + <int64_t>(timeout * 1e9)
        deadline.tv_sec = ns // 1000000000
        deadline.tv_nsec = ns % 1000000000
    pthread_mutex_lock(&r.lock)
    r.waiters += 1
    while r.tail == r.head and not r.woken and not r.closed and rc != ETIMEDOUT:
        if timeout < 0:
            pthread_cond_wait(&r.cond, &r.lock)
        else:
            rc = pthread_cond_timedwait(&r.cond, &r.lock, &deadline)
    r.waiters -= 1
    tessera_store_int(&r.woken, 0)
    ready = r.tail != r.head
    pthread_mutex_unlock(&r.lock)
    return ready


# --------------------------------------------------------------------------- Python level


cdef class Ring:
    cdef ring_t* r

    """Fixed-capacity ring of ``(t_ns, pin, kind, value)`` records.

        ring = Ring(1024); ring.push(time.monotonic_ns(), 17, 1, 1); ring.pop_many(64)
    """

    def __cinit__(self, capacity: int = 1024, *, spin_us: float = DEFAULT_SPIN_US) -> None:
        if capacity < 2 or capacity > MAX_CAPACITY or capacity & (capacity - 1):
            raise ValueError(f"ring capacity {capacity} must be a power of two between 2 and "
                             f"{MAX_CAPACITY}, e.g. 1024")
        if not 0 <= spin_us <= MAX_SPIN_US:
            raise ValueError(f"spin_us {spin_us} must be between 0 (never spin) and "
                             f"{MAX_SPIN_US:g}")
        cdef pthread_condattr_t attr
        self.r = <ring_t*>calloc(1, sizeof(ring_t))
        if self.r == NULL:
            raise MemoryError()
        self.r.buf = <record_t*>calloc(capacity, sizeof(record_t))
        if self.r.buf == NULL:
            free(self.r)
            self.r = NULL
            raise MemoryError()
        self.r.capacity = capacity
        self.r.mask = capacity - 1
        self.r.spin_ns = <int64_t>(spin_us * 1000)
        pthread_mutex_init(&self.r.lock, NULL)
        pthread_condattr_init(&attr)
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)
        pthread_cond_init(&self.r.cond, &attr)
        pthread_condattr_destroy(&attr)

    def __dealloc__(self) -> None:
        if self.r != NULL:
            pthread_cond_destroy(&self.r.cond)
            pthread_mutex_destroy(&self.r.lock)
            free(self.r.buf)
            free(self.r)
            self.r = NULL

    def push(self, int64_t t_ns, int32_t pin, int32_t kind, int32_t value) -> bool:
        """Append a record; False (and ``dropped`` += 1) when the ring is full. Never blocks."""
        return ring_push_nogil(self.r, t_ns, pin, kind, value) != 0

    def push_now(self, int32_t pin, int32_t kind, int32_t value) -> bool:
        """``push`` stamped with CLOCK_MONOTONIC, the clock of ``time.monotonic_ns()``."""
        return ring_push_nogil(self.r, _now_ns(), pin, kind, value) != 0

    def pop_many(self, max_records: int = 256) -> list:
        """Remove and return up to ``max_records`` oldest records, oldest first."""
        return self._take(max_records if max_records > 0 else 0)

    cdef list _take(self, uint64_t want):
        # no GIL release here (a release hands the GIL to whichever thread waits
        # for it, and the consumer then queues to get it back); the counters are
        # read with atomic loads, the copy is made under the mutex, the tuples
        # are built after unlocking
        cdef uint64_t n = tessera_load_u64(&self.r.tail) - tessera_load_u64(&self.r.head)
        cdef uint64_t i
        cdef record_t small[SMALL_BATCH]
        cdef record_t* out = small
        if want > n:
            want = n
        if want == 0:
            return []
        if want > SMALL_BATCH:
            out = <record_t*>malloc(want * sizeof(record_t))
            if out == NULL:
                raise MemoryError()
        try:
            n = _pop_into(self.r, out, want)
            return [(out[i].t_ns, out[i].pin, out[i].kind, out[i].value) for i in range(n)]
        finally:
            if out != small:
                free(out)

    def wait(self, timeout: float | None = None) -> bool:
        """Sleep without the GIL until records are ready (True), or timeout/wake/close (False)."""
        # clamp: a deadline past ~3 years would overflow the int64 ns arithmetic
        cdef double t = -1.0 if timeout is None else min(max(<double>timeout, 0.0), MAX_WAIT_S)
        cdef int ready
        with nogil:
            ready = _wait(self.r, t)
        return ready != 0

    def pop_wait(self, max_records: int = 256, timeout: float | None = None) -> list:
        """``pop_many``; when the ring is empty, first ``wait(timeout)`` (one call, one
        GIL round trip: the consumer's loop). ``[]`` on timeout, wake or close."""
        cdef double t = -1.0 if timeout is None else min(max(<double>timeout, 0.0), MAX_WAIT_S)
        cdef int ready = 1
        if tessera_load_u64(&self.r.tail) == tessera_load_u64(&self.r.head):
            with nogil:
                ready = _wait(self.r, t)
        if not ready:
            return []
        return self._take(max_records if max_records > 0 else 0)

    def wake(self) -> None:
        """Make the current (or next) ``wait`` return at once, e.g. to stop a consumer."""
        pthread_mutex_lock(&self.r.lock)
        tessera_store_int(&self.r.woken, 1)  # a spinning consumer reads it unlocked
        pthread_cond_broadcast(&self.r.cond)
        pthread_mutex_unlock(&self.r.lock)

    def close(self) -> None:
        """Wake every waiter; later ``wait`` calls never block. ``push``/``pop_many`` still work."""
        pthread_mutex_lock(&self.r.lock)
        tessera_store_int(&self.r.closed, 1)
        pthread_cond_broadcast(&self.r.cond)
        pthread_mutex_unlock(&self.r.lock)

    def __len__(self) -> int:
        return self.r.tail - self.r.head

    @property
    def capacity(self) -> int:
        return self.r.capacity

    @property
    def closed(self) -> bool:
        return self.r.closed != 0

    @property
    def spin_us(self) -> float:
        return self.r.spin_ns / 1000.0

    @property
    def pushed(self) -> int:
        return self.r.tail

    @property
    def popped(self) -> int:
        return self.r.head

    @property
    def dropped(self) -> int:
        return self.r.dropped

    @property
    def high_water(self) -> int:
        return self.r.high_water

    def counters(self) -> dict:
        """Snapshot of pushed, popped, dropped, high_water (taken under the lock)."""
        pthread_mutex_lock(&self.r.lock)
        c = (self.r.tail, self.r.head, self.r.dropped, self.r.high_water)
        pthread_mutex_unlock(&self.r.lock)
        return {"pushed": c[0], "popped": c[1], "dropped": c[2], "high_water": c[3]}


# --------------------------------------------------------------------------- test hook




cdef struct _producer_arg:
    ring_t* r
    int32_t pin
    int64_t count
    int64_t accepted


cdef void* _producer_main(void* p) noexcept nogil:
    cdef _producer_arg* a = <_producer_arg*>p
    cdef int64_t i
    for i in range(a.count):
        a.accepted += ring_push_nogil(a.r, _now_ns(), a.pin, 1, <int32_t>i)
    return NULL


def _test_push_nogil_threads(Ring ring, int threads, int64_t per_thread) -> list:
    """Push from ``threads`` native pthreads through ``ring_push_nogil`` (no GIL anywhere).

    Thread ``k`` pushes ``per_thread`` records ``(now, pin=k, kind=1, value=seq)``.
    Returns the number each thread got accepted. Exists so the tests exercise the
    C-level push path a native GPIO callback would use.
    """
    if threads < 1 or threads > 64:
        raise ValueError("threads must be between 1 and 64")
    cdef _producer_arg* args = <_producer_arg*>calloc(threads, sizeof(_producer_arg))
    cdef pthread_t* tids = <pthread_t*>calloc(threads, sizeof(pthread_t))
    cdef int k, started = 0
    if args == NULL or tids == NULL:
        free(args)
        free(tids)
        raise MemoryError()
    try:
        with nogil:
            for k in range(threads):
                args[k].r = ring.r
                args[k].pin = k
                args[k].count = per_thread
                if pthread_create(&tids[k], NULL, _producer_main, &args[k]) != 0:
                    break
                started += 1
            for k in range(started):
                pthread_join(tids[k], NULL)
        if started != threads:
            raise OSError("pthread_create failed")
        return [args[k].accepted for k in range(threads)]
    finally:
        free(args)
        free(tids)
