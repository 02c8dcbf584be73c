/* SPDX-License-Identifier: GPL-2.0 */
/*
 * json_get.h - typed member reads from a json-c object, strict about the
 * member's type: a member of another type reads as absent.
 */
#ifndef IDN_JSON_GET_H
#define IDN_JSON_GET_H

#include <stdint.h>
#include <json-c/json.h>

/* member @k if it is a string, else NULL */
static inline const char *idn_jstr(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string) ?
	       json_object_get_string(v) : NULL;
}

/* member @k if it is an integer, else @dflt */
static inline int64_t idn_jint(json_object *o, const char *k, int64_t dflt)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_int) ?
	       json_object_get_int64(v) : dflt;
}

#endif
