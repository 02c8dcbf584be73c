// SPDX-License-Identifier: GPL-2.0
/*
 * audit.c - idnd's audit log: one JSON line per change, who / what / when.
 *
 * Every POST and DELETE of the API is written, accepted or refused, with
 * who: the client certificate's principal at the client address
 * ("admin@127.0.0.1"; the address alone under --insecure; a refusal's
 * unverified subject says "(unverified)"), the method and path, the
 * status answered (403s of the role check included), and
 * the body (at most IDND_AUDIT_BODY bytes, as a JSON string); the closed
 * loop's and demand activation's re-placements are written with who =
 * "loop" / "hold". The file is opened O_APPEND and each line is one
 * write(2), so lines of concurrent writers never interleave and a crash
 * loses at most the line being written. Nothing here fails a request: a
 * write error is counted (idnd_audit_errors) and logged once.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "idnd.h"
#include "audit.h"

#define IDND_AUDIT_BODY 1024

static int audit_fd = -1;
static unsigned long audit_errors;

int idnd_audit_open(const char *path)
{
	if (!path || !strcmp(path, "none"))
		return 0;
	audit_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	return audit_fd < 0 ? -errno : 0;
}

void idnd_audit_close(void)
{
	if (audit_fd >= 0)
		close(audit_fd);
	audit_fd = -1;
}

unsigned long idnd_audit_errors(void)
{
	return audit_errors;
}

void idnd_audit(const char *who, const char *method, const char *what, unsigned int status,
		const char *body, size_t len)
{
	json_object *o;
	struct timespec ts;
	struct tm tm;
	char when[40], *line;
	const char *s;
	size_t n;

	if (audit_fd < 0)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(when + n, sizeof(when) - n, ".%03ldZ", ts.tv_nsec / 1000000);
	o = json_object_new_object();
	json_object_object_add(o, "ts", json_object_new_string(when));
	json_object_object_add(o, "who", json_object_new_string(who));
	json_object_object_add(o, "method", json_object_new_string(method));
	json_object_object_add(o, "what", json_object_new_string(what));
	json_object_object_add(o, "status", json_object_new_int(status));
	if (body && len)	/* json-c escapes it: control bytes cannot forge a line */
		json_object_object_add(o, "body", json_object_new_string_len(body,
					len > IDND_AUDIT_BODY ? IDND_AUDIT_BODY : len));
	if (body && len > IDND_AUDIT_BODY)
		json_object_object_add(o, "body_bytes", json_object_new_int64(len));
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	n = strlen(s);
	line = malloc(n + 2);
	if (line) {
		memcpy(line, s, n);
		line[n] = '\n';
		if (write(audit_fd, line, n + 1) != (ssize_t)(n + 1) && !audit_errors++)
			pr_warn("AUDIT: write failed: %s\n", strerror(errno));
		free(line);
	} else {
		audit_errors++;
	}
	json_object_put(o);
}
