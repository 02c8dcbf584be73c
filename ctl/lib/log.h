/* SPDX-License-Identifier: GPL-2.0 */
/*
 * log.h - logging for idn tools and the library's error messages.
 *
 * pr_err and pr_warn always print (stderr), pr_info with -v, pr_debug
 * with -vv (a daemon, idn_log_daemon(): info by default, debug with -v).
 * libbpf's own output goes through the same sink one level lower
 * (libbpf warnings need -v) and can be silenced while the caller prints
 * a better message (idn_log_libbpf_quiet()).
 *
 * Library functions never print: on failure they return -errno and leave
 * a message for the caller in idn_errmsg() (like a netlink extack).
 */
#ifndef __IDN_CTL_LOG_H
#define __IDN_CTL_LOG_H

#include <stdbool.h>

enum idn_log_level {
	IDN_LOG_ERR = -1,
	IDN_LOG_WARN = 0,
	IDN_LOG_INFO = 1,
	IDN_LOG_DEBUG = 2,
	IDN_LOG_LIBBPF_DEBUG = 3,
};

/* A tool's log (idnctl): plain lines; libbpf's output too (log_bpf.c). */
void idn_log_init(int verbosity);
/*
 * A daemon's log (idnd): info and above by default, -v debug; every line
 * gets its level, and a UTC timestamp, "2026-12-06T23:55:01.123Z info
 * MESSAGE"; when stderr is the journal (systemd's JOURNAL_STREAM names
 * it) a sd-daemon(3) priority prefix instead ("<6>MESSAGE"), journald
 * stamping the time itself.
 */
void idn_log_daemon(int verbosity);
/*
 * The sink alone (log.c), for programs that do not link libbpf (idn-agent
 * links log.c without log_bpf.c): VERBOSITY is the highest level printed
 * (IDN_LOG_INFO: info and above); DAEMON, the daemon's line style above.
 */
void idn_log_set(int verbosity, bool daemon);
int idn_log_verbosity(void);
/* Suppress libbpf output (e.g. around an expected failure); returns old state. */
bool idn_log_libbpf_quiet(bool quiet);
/*
 * The verifier's line naming a helper or function it refused during the
 * last failed load ("" if none), e.g. "program of this type cannot use
 * helper bpf_xdp_adjust_meta#54"; clear resets it.
 */
const char *idn_log_libbpf_refused(bool clear);
void idn_log(enum idn_log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define pr_err(fmt, ...)   idn_log(IDN_LOG_ERR, fmt, ##__VA_ARGS__)
#define pr_warn(fmt, ...)  idn_log(IDN_LOG_WARN, fmt, ##__VA_ARGS__)
#define pr_info(fmt, ...)  idn_log(IDN_LOG_INFO, fmt, ##__VA_ARGS__)
#define pr_debug(fmt, ...) idn_log(IDN_LOG_DEBUG, fmt, ##__VA_ARGS__)

/* Last library error message, or "" (thread-local). */
const char *idn_errmsg(void);
/* Set the message and return err (a negative errno), for `return idn_err(...)`. */
int idn_err(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void idn_errclear(void);

#endif /* __IDN_CTL_LOG_H */
