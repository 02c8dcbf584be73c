// SPDX-License-Identifier: GPL-2.0
/*
 * unit_ctl_http.c - ctl/lib/http.c, the control plane's transport: role
 * names, the TLS configuration's refusals (what is missing, a plain/TLS
 * mix-up), the client's refusal of plain HTTP without --insecure, and a
 * request through a plain server and client on loopback (the TLS paths
 * are exercised end to end with real certificates by
 * selftests/security/test_tls.sh).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "tap.h"
#include "http.h"

static void test_roles(void)
{
	static const char *const names[] = { "read-only", "router", "node", "controller", "admin" };

	for (int i = 0; i < 5; i++) {
		enum idn_role r = idn_role_parse(names[i]);

		if (!ASSERT_NEQ(r, IDN_ROLE_NONE, names[i]))
			return;
		ASSERT_TRUE(!strcmp(idn_role_name(r), names[i]), "name round trip");
	}
	ASSERT_EQ(idn_role_parse("Admin"), IDN_ROLE_NONE, "case matters");
	ASSERT_EQ(idn_role_parse("plain"), IDN_ROLE_NONE, "plain is no certificate role");
	ASSERT_EQ(idn_role_parse(""), IDN_ROLE_NONE, "empty OU");
	ASSERT_TRUE(idn_peer_has(&(struct idn_peer){ .role = IDN_ROLE_PLAIN }, 0),
		    "--insecure: every role");
	ASSERT_TRUE(!idn_peer_has(&(struct idn_peer){ .role = IDN_ROLE_NODE },
				  IDN_ROLE_BIT(IDN_ROLE_ADMIN)), "node is not admin");
	ASSERT_TRUE(!idn_peer_has(&(struct idn_peer){ .role = IDN_ROLE_NONE }, ~0u & ~1u),
		    "no role: nothing");
}

static void test_load(void)
{
	struct idn_tls t = {};
	char err[320];

	ASSERT_EQ(idn_tls_load(&t, true, err, sizeof(err)), -EINVAL, "nothing given");
	ASSERT_TRUE(strstr(err, "--insecure") != NULL, "says --insecure");
	t = (struct idn_tls){ .insecure = true };
	ASSERT_OK(idn_tls_load(&t, true, err, sizeof(err)), "insecure alone");
	ASSERT_TRUE(!idn_tls_on(&t), "insecure: no TLS");
	t = (struct idn_tls){ .insecure = true, .cert = "/x.pem" };
	ASSERT_EQ(idn_tls_load(&t, true, err, sizeof(err)), -EINVAL, "insecure with a cert");
	ASSERT_TRUE(strstr(err, "choose one") != NULL, "says choose one");
	t = (struct idn_tls){ .ca = "/nonexistent/ca.pem", .cert = "/nonexistent/c.pem",
			      .key = "/nonexistent/k.pem" };
	ASSERT_EQ(idn_tls_load(&t, true, err, sizeof(err)), -ENOENT, "missing file");
	ASSERT_TRUE(strstr(err, "--ca /nonexistent/ca.pem") != NULL, "names the flag and file");
	ASSERT_TRUE(!t.ca_pem && !idn_tls_on(&t), "nothing kept");
	t = (struct idn_tls){ .ca = "/dev/null", .cert = "/dev/null", .key = "/dev/null" };
	ASSERT_EQ(idn_tls_load(&t, true, err, sizeof(err)), -EINVAL, "empty file");
}

static void test_client_refuses(void)
{
	struct idn_tls plain = {}, ins = { .insecure = true };
	CURL *c = curl_easy_init();
	char err[320];

	if (!ASSERT_TRUE(c != NULL, "curl"))
		return;
	ASSERT_EQ(idn_http_client(c, "http://127.0.0.1:1/", &plain, err, sizeof(err)), -EPERM,
		  "http without --insecure");
	ASSERT_TRUE(strstr(err, "without --insecure") != NULL, "says why");
	ASSERT_EQ(idn_http_client(c, "https://127.0.0.1:1/", &ins, err, sizeof(err)), -EPERM,
		  "https without a certificate");
	ASSERT_TRUE(strstr(err, "no client certificate") != NULL, "says no client certificate");
	ASSERT_EQ(idn_http_client(c, "ftp://127.0.0.1/", &ins, err, sizeof(err)), -EINVAL,
		  "another scheme");
	ASSERT_OK(idn_http_client(c, "http://127.0.0.1:1/", &ins, err, sizeof(err)),
		  "http with --insecure");
	curl_easy_cleanup(c);
}

static enum MHD_Result echo(void *cls, struct MHD_Connection *c, const char *url,
			    const char *method, const char *version, const char *data,
			    size_t *size, void **con_cls)
{
	const struct idn_peer *p = idn_http_peer(c, cls);
	char body[128];
	struct MHD_Response *r;
	enum MHD_Result ret;

	if (!*con_cls) {
		*con_cls = (void *)1;
		return MHD_YES;
	}
	if (*size) {
		*size = 0;
		return MHD_YES;
	}
	snprintf(body, sizeof(body), "%s %s %s %s", method, url, p->name, idn_role_name(p->role));
	r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_COPY);
	ret = MHD_queue_response(c, 200, r);
	MHD_destroy_response(r);
	return ret;
}

static void test_plain_roundtrip(void)
{
	struct idn_tls ins = { .insecure = true }, none = {};
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct idn_http_srv srv = {
		.sa = (struct sockaddr *)&sa,
		.flags = MHD_USE_INTERNAL_POLLING_THREAD,
		.handler = echo,
		.cls = &ins,
		.tls = &ins,
		.what = "unit",
	};
	struct idn_http_buf b = {};
	const union MHD_DaemonInfo *di;
	struct MHD_Daemon *d;
	char err[320], url[64];
	long code = 0;
	CURL *c;

	srv.tls = &none;
	ASSERT_TRUE(idn_http_start(&srv, err, sizeof(err)) == NULL, "no TLS and not insecure");
	ASSERT_TRUE(strstr(err, "not --insecure") != NULL, "says why");
	srv.tls = &ins;
	d = idn_http_start(&srv, err, sizeof(err));
	if (!ASSERT_TRUE(d != NULL, err))
		return;
	di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/v1/x", di ? di->port : 0);
	c = curl_easy_init();
	ASSERT_OK(idn_http_request(c, &ins, "POST", url, "{}", 2000, &b, &code, err, sizeof(err)),
		  "request");
	ASSERT_EQ(code, 200, "200");
	ASSERT_TRUE(b.p && !strcmp(b.p, "POST /v1/x plain plain"), "plain peer: role plain");
	free(b.p);
	b = (struct idn_http_buf){};
	ASSERT_EQ(idn_http_request(c, &none, "GET", url, NULL, 2000, &b, &code, err, sizeof(err)),
		  -EPERM, "the same URL refused without --insecure");
	free(b.p);
	curl_easy_cleanup(c);
	MHD_stop_daemon(d);
}

int main(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	tap_plan(0);
	TAP_RUN(test_roles);
	TAP_RUN(test_load);
	TAP_RUN(test_client_refuses);
	TAP_RUN(test_plain_roundtrip);
	curl_global_cleanup();
	return tap_done();
}
