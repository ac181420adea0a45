/* Scope-bound cleanup helpers on __attribute__((cleanup)), in the manner of
 * libvirt's g_autoptr without GLib.  A variable declared AUTOFREE is freed
 * with free() when it leaves scope; AUTO(fn) calls fn(&var).  STEAL(p)
 * hands the value out of the scope and leaves NULL behind. */
#ifndef KVMSTACK_CLEANUP_H
#define KVMSTACK_CLEANUP_H 1

#include <stdlib.h>

static inline void
cleanup_freep(void *p)
{
    free(*(void **) p);
}

#define AUTOFREE __attribute__((cleanup(cleanup_freep)))
#define AUTO(fn) __attribute__((cleanup(fn)))

/* Defines 'name'(type **), calling 'fn' on a non-NULL pointer. */
#define DEFINE_FREEP(name, type, fn)          \
    static inline void                        \
    name(type **p)                            \
    {                                         \
        if (*p) {                             \
            fn(*p);                           \
        }                                     \
    }

#define STEAL(p) ({ __typeof__(p) steal_tmp_ = (p); (p) = NULL; steal_tmp_; })

#endif
