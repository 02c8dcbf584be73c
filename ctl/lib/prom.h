/* SPDX-License-Identifier: GPL-2.0 */
/*
 * prom.h - the one Prometheus text-format (0.0.4) writer of idnd,
 * idn-agent and idnctl's dataplane exporter.
 *
 * A family is opened with its name, type and help, then its samples are
 * written with label pairs ending in NULL:
 *
 *	struct idn_prom p;
 *	idn_prom_init(&p, f);
 *	idn_prom_family(&p, "idn_dp_packets_total", IDN_PROM_COUNTER,
 *			"Packets handled, by verdict.");
 *	idn_prom_u64(&p, NULL, 42, "verdict", "steer", NULL);
 *	idn_prom_end(&p);  // 0, or -EINVAL naming the first misuse
 *
 * The writer does what the format and the naming conventions ask: HELP
 * (backslash and newline escaped) and TYPE before the samples; label
 * values escaped (backslash, double quote, newline); metric and label
 * names checked against the grammar; a counter's name must end in
 * _total; each family appears once. A misuse is not written: the first
 * one is kept in p->err (idn_prom_end() returns -EINVAL and p->why says
 * what), so a test catches it and a scrape never sees a broken line.
 */
#ifndef __IDN_CTL_PROM_H
#define __IDN_CTL_PROM_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum idn_prom_type {
	IDN_PROM_COUNTER,
	IDN_PROM_GAUGE,
	IDN_PROM_HISTOGRAM,
};

#define IDN_PROM_MAX_FAMILIES 256

struct idn_prom {
	FILE *f;
	char fam[128];		/* the open family's name, "" before the first */
	enum idn_prom_type type;
	int err;		/* 0, or -EINVAL after the first misuse */
	char why[256];
	unsigned int n_fam;
	uint32_t seen[IDN_PROM_MAX_FAMILIES];	/* hashes of the families written */
};

void idn_prom_init(struct idn_prom *p, FILE *f);
/* Open a family: # HELP and # TYPE lines. */
void idn_prom_family(struct idn_prom *p, const char *name, enum idn_prom_type type,
		     const char *help);
/*
 * A sample of the open family. suffix: NULL, or for a histogram
 * "_bucket", "_sum" or "_count". Then label name/value pairs, NULL-ended.
 */
void idn_prom_u64(struct idn_prom *p, const char *suffix, uint64_t v, ...)
	__attribute__((sentinel));
void idn_prom_f64(struct idn_prom *p, const char *suffix, double v, ...)
	__attribute__((sentinel));
/* One family of one unlabelled sample. */
void idn_prom_one_u64(struct idn_prom *p, const char *name, enum idn_prom_type type,
		      const char *help, uint64_t v);
void idn_prom_one_f64(struct idn_prom *p, const char *name, enum idn_prom_type type,
		      const char *help, double v);
/* 0, or the first misuse's -EINVAL (p->why). */
int idn_prom_end(struct idn_prom *p);

/*
 * A label value escaped for the text format (\\, \", \n) into out (size
 * n, always terminated). Return: the length the whole escaped value
 * needs (as snprintf), so a caller can tell it was cut.
 */
size_t idn_prom_escape(char *out, size_t n, const char *in);
/* Whether s is a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*). */
bool idn_prom_name_ok(const char *s, bool label);

#endif /* __IDN_CTL_PROM_H */
