/* SPDX-License-Identifier: GPL-2.0 */
/* audit.h - idnd's audit log of every change (audit.c). */
#ifndef __IDN_IDND_AUDIT_H
#define __IDN_IDND_AUDIT_H

#include <stddef.h>

/* Open the JSON-lines file (O_APPEND; "none" or NULL: no audit). 0 or -errno. */
int idnd_audit_open(const char *path);
void idnd_audit_close(void);
/*
 * idnd_audit - one line: @who (client address, "loop", "hold"), @method,
 * @what (path or action), @status, @body (NULL or @len bytes, cut at 1 KiB).
 */
void idnd_audit(const char *who, const char *method, const char *what, unsigned int status,
		const char *body, size_t len);
unsigned long idnd_audit_errors(void);

#endif /* __IDN_IDND_AUDIT_H */
