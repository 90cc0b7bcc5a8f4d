/* tests/lint_analyzer.h - included before every file but util.c by `make lint`
 * (clang-tidy only; never by a build). The analyzer sees one file at a time, so
 * it cannot know what util.h documents: dpo_errf, dpo_err_prefix,
 * dpo_err_resource and dpo_err_oom always return -1. Without that it follows `return dpo_errf(...)` as a success and
 * reports the unwritten outputs of the failed call. This header states the
 * contract to it: each call is still made, and its result is known to be -1. */
#ifndef DPO_LINT_ANALYZER_H
#define DPO_LINT_ANALYZER_H
#include "util.h"

static inline int dpo_lint_minus_one(int r) {
    (void)r;
    return -1;
}
#define dpo_errf(...) dpo_lint_minus_one(dpo_errf(__VA_ARGS__))
#define dpo_err_prefix(...) dpo_lint_minus_one(dpo_err_prefix(__VA_ARGS__))
#define dpo_err_resource(e) dpo_lint_minus_one(dpo_err_resource(e))
#define dpo_err_oom(...) dpo_lint_minus_one(dpo_err_oom(__VA_ARGS__))
#endif
