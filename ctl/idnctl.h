/* SPDX-License-Identifier: GPL-2.0 */
/*
 * idnctl.h - what the idnctl object files share: global options, the
 * argument helpers of the iproute2 grammar, and the IDN printers.
 *
 * Handlers are `int do_<object>(int argc, char **argv)` with argv at the
 * command; they return the exit status: 0 ok, 1 runtime failure, 2 usage
 * error, having printed the error once (idn_print_error).
 */
#ifndef __IDN_CTL_IDNCTL_H
#define __IDN_CTL_IDNCTL_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "libidn.h"
#include "json_print.h"
#include "http.h"

#define EXIT_OK		0
#define EXIT_FAIL	1
#define EXIT_USAGE	2

struct idnctl_opts {
	bool json, pretty;
	int verbose;
	const char *pin;	/* pin dir (-P, $IDN_PIN, default) */
	const char *netns;
	const char *ctl_url;	/* idnd's API (-C), see controller.c */
	struct idn_tls tls;	/* --ca/--cert/--key/--insecure, $IDN_CA... (http.h) */
	struct idn_maps maps;
};

extern struct idnctl_opts G;

/* Full-word keyword match (no prefixes: iproute2 commit bd522643). */
static inline bool matches(const char *arg, const char *kw)
{
	return !strcmp(arg, kw);
}

int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int runtime_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int refuse_managed(const char *cmd);

struct json_object;
/* controller.c: one call to idnd's API (-C URL, $IDN_CONTROLLER, or
 * https://127.0.0.1:8787, http:// with --insecure); *out: the parsed 2xx answer; prints errors and
 * returns the exit status */
int ctl_api(const char *method, const char *path, const char *body, struct json_object **out);
/* Command "x" is unknown, try "idnctl OBJ help". */
int unknown_cmd(const char *obj, const char *cmd);
/* A library parser failed: its message, exit 2. */
int invarg(void);
int missarg(const char *kw);
int duparg(const char *kw);

/* Advance to the value of keyword argv[0]; return 2 from the caller if none. */
#define NEXT_ARG() do {							\
	if (argc < 2)							\
		return missarg(*argv);					\
	argv++, argc--;							\
} while (0)
#define PREV_ARG() do { argv--; argc++; } while (0)

/* Parse into a variable or return 2 with the parser's message. */
#define PARSE(expr) do { if ((expr) < 0) return invarg(); } while (0)

int do_dp(int argc, char **argv);
int do_vip(int argc, char **argv);
int do_node(int argc, char **argv);
int do_plan(int argc, char **argv);
int do_cap(int argc, char **argv);
int do_route(int argc, char **argv);
int do_stats(int argc, char **argv);
int do_receipt(int argc, char **argv);
int do_receipt_verify(int argc, char **argv);	/* receipt_verify.c */
int do_hold(int argc, char **argv);
int do_monitor(int argc, char **argv);
/* controller.c: objects served by idnd over HTTP */
int do_controller(int argc, char **argv);
int do_placement(int argc, char **argv);
int ctl_cap_list(int argc, char **argv);
/* sign.c: signed capability metadata; ctl_cap_sign -1: not one of its commands */
int ctl_cap_sign(int argc, char **argv);
int sign_usage(void);
int do_publisher(int argc, char **argv);
int do_state(int argc, char **argv);		/* state.c: agents' state via idnd */
int ctl_node_list(int argc, char **argv);
int ctl_node_drain(int argc, char **argv, bool on);	/* node { drain | undrain } ID */
/* node_ident.c: identity, enrolment, telemetry keys; -1: not one of its commands */
int ctl_node_ident(int argc, char **argv);
void ctl_node_pending_print(void);
int do_policy(int argc, char **argv);
int do_bgp(int argc, char **argv);		/* bgp.c: capability anycast through BIRD */
int do_peer(int argc, char **argv);		/* peer.c: federation (idnd) */

/* print_idn.c: IDN values through the print layer. */
void print_cap(const char *key, const char *fmt, __u32 cap);
void print_policy(const char *key, __u8 policy);
void print_addr(const char *key, const char *fmt, __u8 family, const __u32 addr[4]);
void print_desc(const struct idn_desc *d);
void print_flow(const struct idn_flow_key *f);
void print_receipt(const struct idn_receipt *rc);
void print_rcands(const struct idn_receipt *rc);
void print_node_entry(__u32 id, const struct idn_node *n);
void print_plan_entry(const struct idn_plan_entry *e);
void print_vip_entry(const struct idn_vip_entry *e);

#endif /* __IDN_CTL_IDNCTL_H */
