// SPDX-License-Identifier: GPL-2.0
/*
 * unit_bpf_stack.c - the combined stack of every BPF call chain, read from
 * the built objects, against the verifier's 512-byte limit.
 *
 * The verifier adds up the stack of each frame along a chain of bpf-to-bpf
 * calls, every frame rounded up to 32 bytes, and refuses the program when
 * a chain passes MAX_BPF_STACK (512). Debian 6.1's verifier applies the
 * limit; newer ones can accept more, so a frame that grows on the build
 * machine's kernel only fails on 6.1. This test finds it without a guest:
 *
 *   frame   the deepest r10-relative offset a function touches: a load or
 *           store through r10, or a pointer r10 + K handed on (helper
 *           arguments, e.g. "r1 = r10; r1 += -32")
 *   calls   BPF_PSEUDO_CALL instructions (call relocations against a
 *           function or section symbol, or a pc-relative immediate) and
 *           function addresses loaded for callbacks (bpf_loop), which
 *           newer verifiers count as calls too
 *   chain   the worst sum of rounded frames from each program (a function
 *           outside .text) along the static call graph
 *
 * Without arguments: TAP over the objects in $O/bpf (O defaults to build), plus
 * checks that the analysis fails where it must (a lower limit, a synthetic
 * chain over 512). With arguments: [-l LIMIT] OBJ...: print each program's
 * worst chain, exit 1 when one is over LIMIT.
 */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <glob.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/bpf.h>

#include "../lib/tap.h"

#define STACK_LIMIT	512	/* MAX_BPF_STACK */
#define FRAME_ROUND	32	/* the verifier rounds each frame up to this */
#define MAX_FUNCS	256
#define MAX_CALLS	64
#define MAX_DEPTH	16

struct bfunc {
	char name[64];
	int sec;		/* ELF section index */
	int entry;		/* a program (not in .text) */
	int frame;		/* deepest r10 offset, bytes */
	int ncalls;
	int calls[MAX_CALLS];	/* indices into the model's funcs */
};

struct model {
	int nfuncs;
	struct bfunc funcs[MAX_FUNCS];
};

struct chain {
	int total;		/* sum of rounded frames */
	int n;
	int idx[MAX_DEPTH];
};

static int round_frame(int frame)
{
	if (frame < 1)
		frame = 1;
	return (frame + FRAME_ROUND - 1) / FRAME_ROUND * FRAME_ROUND;
}

/* worst chain from f; -ELOOP on recursion or a chain too deep to follow */
static int worst_chain(const struct model *m, int f, int depth, struct chain *out)
{
	const struct bfunc *fn = &m->funcs[f];
	struct chain best = { 0 }, c;
	int i, err;

	if (depth >= MAX_DEPTH)
		return -ELOOP;
	for (i = 0; i < fn->ncalls; i++) {
		err = worst_chain(m, fn->calls[i], depth + 1, &c);
		if (err)
			return err;
		if (c.total > best.total)
			best = c;
	}
	out->total = round_frame(fn->frame) + best.total;
	out->idx[0] = f;
	memcpy(&out->idx[1], best.idx, best.n * sizeof(best.idx[0]));
	out->n = best.n + 1;
	return 0;
}

static void chain_str(const struct model *m, const struct chain *c, char *buf, size_t len)
{
	size_t o = 0;
	int i;

	buf[0] = 0;
	for (i = 0; i < c->n && o < len; i++) {
		const struct bfunc *fn = &m->funcs[c->idx[i]];

		o += snprintf(buf + o, len - o, "%s%s %d", i ? " -> " : "",
			      fn->name, round_frame(fn->frame));
	}
	if (o < len)
		snprintf(buf + o, len - o, " = %d", c->total);
}

static void add_call(struct bfunc *fn, int callee)
{
	int i;

	for (i = 0; i < fn->ncalls; i++)
		if (fn->calls[i] == callee)
			return;
	if (fn->ncalls < MAX_CALLS)
		fn->calls[fn->ncalls++] = callee;
}

/* ---- reading an object ------------------------------------------------ */

struct xsec {
	int idx;
	const struct bpf_insn *insn;
	size_t ninsn;
	int *rsym;		/* per instruction: relocation symbol or -1 */
};

static int func_at(const struct model *m, int sec, size_t byte_off,
		   const GElf_Sym *starts)
{
	int i;

	for (i = 0; i < m->nfuncs; i++)
		if (m->funcs[i].sec == sec && starts[i].st_value <= byte_off &&
		    byte_off < starts[i].st_value + starts[i].st_size)
			return i;
	return -1;
}

/* the deepest stack byte a function's instructions reach through r10 */
static int frame_of(const struct bpf_insn *insn, size_t n)
{
	long r10off[MAX_BPF_REG];	/* reg = r10 + off, or 1 when not */
	int deepest = 0;
	size_t i;
	int r;

	for (r = 0; r < MAX_BPF_REG; r++)
		r10off[r] = 1;
	for (i = 0; i < n; i++) {
		const struct bpf_insn *in = &insn[i];
		__u8 cls = BPF_CLASS(in->code);
		long off = 1;

		switch (cls) {
		case BPF_LDX:
			if (in->src_reg == BPF_REG_10)
				off = in->off;
			if (in->dst_reg < MAX_BPF_REG)
				r10off[in->dst_reg] = 1;
			break;
		case BPF_ST:
		case BPF_STX:
			if (in->dst_reg == BPF_REG_10)
				off = in->off;
			else if (in->dst_reg < MAX_BPF_REG && r10off[in->dst_reg] <= 0)
				off = r10off[in->dst_reg] + in->off;
			break;
		case BPF_ALU64:
			if (in->dst_reg >= MAX_BPF_REG)
				break;
			if (BPF_OP(in->code) == BPF_MOV && BPF_SRC(in->code) == BPF_X) {
				r10off[in->dst_reg] = in->src_reg == BPF_REG_10 ? 0 :
					r10off[in->src_reg];
			} else if (BPF_OP(in->code) == BPF_ADD && BPF_SRC(in->code) == BPF_K &&
				   r10off[in->dst_reg] <= 0) {
				r10off[in->dst_reg] += in->imm;
				off = r10off[in->dst_reg];
			} else {
				r10off[in->dst_reg] = 1;
			}
			break;
		case BPF_ALU:
		case BPF_LD:
			if (in->dst_reg < MAX_BPF_REG)
				r10off[in->dst_reg] = 1;
			if (in->code == (BPF_LD | BPF_IMM | BPF_DW))
				i++;
			break;
		case BPF_JMP:
			/* a call clobbers r0-r5 */
			if (BPF_OP(in->code) == BPF_CALL)
				for (r = 0; r <= BPF_REG_5; r++)
					r10off[r] = 1;
			break;
		}
		if (off <= 0 && -off > deepest)
			deepest = -off;
	}
	return deepest;
}

/* Build the model of one object; 0 or a negative errno with *why set. */
static int model_load(const char *path, struct model *m, const char **why)
{
	GElf_Sym starts[MAX_FUNCS];
	struct xsec xs[32];
	int nxs = 0, fd, err = -EINVAL, i, text_idx = -1;
	Elf_Data *symdata = NULL;
	size_t shstrndx, nsyms = 0, symstr = 0, j;
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;
	Elf *e;

	memset(m, 0, sizeof(*m));
	memset(xs, 0, sizeof(xs));
	*why = "";
	elf_version(EV_CURRENT);
	fd = open(path, O_RDONLY);
	if (fd < 0) {
		*why = strerror(errno);
		return -errno;
	}
	e = elf_begin(fd, ELF_C_READ, NULL);
	if (!e || elf_kind(e) != ELF_K_ELF || elf_getshdrstrndx(e, &shstrndx)) {
		*why = "not an ELF object";
		goto out;
	}
	/* executable sections and the symbol table */
	while ((scn = elf_nextscn(e, scn))) {
		const char *name;
		Elf_Data *d;

		if (!gelf_getshdr(scn, &sh))
			continue;
		name = elf_strptr(e, shstrndx, sh.sh_name);
		if (sh.sh_type == SHT_SYMTAB) {
			symdata = elf_getdata(scn, NULL);
			nsyms = sh.sh_size / sh.sh_entsize;
			symstr = sh.sh_link;
		} else if (sh.sh_type == SHT_PROGBITS && (sh.sh_flags & SHF_EXECINSTR) &&
			   sh.sh_size) {
			if (nxs == (int)(sizeof(xs) / sizeof(xs[0]))) {
				*why = "too many executable sections";
				goto out;
			}
			d = elf_getdata(scn, NULL);
			xs[nxs].idx = elf_ndxscn(scn);
			xs[nxs].insn = d->d_buf;
			xs[nxs].ninsn = d->d_size / sizeof(struct bpf_insn);
			xs[nxs].rsym = malloc(xs[nxs].ninsn * sizeof(int));
			if (!xs[nxs].rsym) {
				err = -ENOMEM;
				*why = "out of memory";
				goto out;
			}
			for (j = 0; j < xs[nxs].ninsn; j++)
				xs[nxs].rsym[j] = -1;
			if (name && !strcmp(name, ".text"))
				text_idx = xs[nxs].idx;
			nxs++;
		}
	}
	if (!symdata || !nxs) {
		*why = "no symbol table or no code";
		goto out;
	}
	/* functions */
	for (j = 0; j < nsyms; j++) {
		GElf_Sym s;
		const char *name;
		struct bfunc *fn;

		if (!gelf_getsym(symdata, j, &s) || GELF_ST_TYPE(s.st_info) != STT_FUNC ||
		    !s.st_size)
			continue;
		if (m->nfuncs == MAX_FUNCS) {
			*why = "too many functions";
			goto out;
		}
		name = elf_strptr(e, symstr, s.st_name);
		fn = &m->funcs[m->nfuncs];
		snprintf(fn->name, sizeof(fn->name), "%s", name ? name : "?");
		fn->sec = s.st_shndx;
		fn->entry = s.st_shndx != text_idx;
		starts[m->nfuncs++] = s;
	}
	/* relocations of the executable sections */
	scn = NULL;
	while ((scn = elf_nextscn(e, scn))) {
		Elf_Data *d;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_REL)
			continue;
		for (i = 0; i < nxs && xs[i].idx != (int)sh.sh_info; i++)
			;
		if (i == nxs)
			continue;
		d = elf_getdata(scn, NULL);
		for (j = 0; j < sh.sh_size / sh.sh_entsize; j++) {
			GElf_Rel rel;
			size_t at;

			if (!gelf_getrel(d, j, &rel))
				continue;
			at = rel.r_offset / sizeof(struct bpf_insn);
			if (at < xs[i].ninsn)
				xs[i].rsym[at] = GELF_R_SYM(rel.r_info);
		}
	}
	/* frames and calls */
	for (i = 0; i < m->nfuncs; i++) {
		struct bfunc *fn = &m->funcs[i];
		const struct xsec *x = NULL;
		size_t first, last;
		int k;

		for (k = 0; k < nxs; k++)
			if (xs[k].idx == fn->sec)
				x = &xs[k];
		if (!x)
			continue;
		first = starts[i].st_value / sizeof(struct bpf_insn);
		last = first + starts[i].st_size / sizeof(struct bpf_insn);
		if (last > x->ninsn) {
			*why = "function past its section";
			goto out;
		}
		fn->frame = frame_of(x->insn + first, last - first);
		for (j = first; j < last; j++) {
			const struct bpf_insn *in = &x->insn[j];
			int is_call = in->code == (BPF_JMP | BPF_CALL) &&
				in->src_reg == BPF_PSEUDO_CALL;
			int is_addr = in->code == (BPF_LD | BPF_IMM | BPF_DW);
			long tsec = fn->sec, tbyte;
			int callee;
			GElf_Sym s;

			if (!is_call && !is_addr)
				continue;
			if (x->rsym[j] >= 0) {
				if (!gelf_getsym(symdata, x->rsym[j], &s))
					continue;
				tsec = s.st_shndx;
				for (k = 0; k < nxs && xs[k].idx != tsec; k++)
					;
				if (k == nxs) {
					if (is_addr) {
						j++;	/* a map or data address */
						continue;
					}
					*why = "call into a section without code";
					goto out;
				}
				/* calls: insn index; addresses: byte offset */
				tbyte = is_call ? (long)s.st_value +
					((long)in->imm + 1) * (long)sizeof(*in) :
					(long)s.st_value + in->imm;
			} else if (is_call) {
				tbyte = ((long)j + in->imm + 1) * (long)sizeof(*in);
			} else {
				j++;
				continue;
			}
			if (is_addr)
				j++;
			callee = func_at(m, tsec, tbyte, starts);
			if (callee < 0) {
				*why = "call to an address no function covers";
				goto out;
			}
			add_call(fn, callee);
		}
	}
	err = 0;
out:
	for (i = 0; i < nxs; i++)
		free(xs[i].rsym);
	if (e)
		elf_end(e);
	close(fd);
	return err;
}

/*
 * Each program's worst chain; the number of programs over limit, or a
 * negative errno. verbose: one line per program.
 */
static int model_check(const struct model *m, int limit, const char *tag,
		       int verbose, struct chain *worst)
{
	char buf[512];
	int i, over = 0, err;
	struct chain c;

	memset(worst, 0, sizeof(*worst));
	for (i = 0; i < m->nfuncs; i++) {
		if (!m->funcs[i].entry)
			continue;
		err = worst_chain(m, i, 0, &c);
		if (err) {
			printf("# %s %s: recursive or deeper than %d calls\n", tag,
			       m->funcs[i].name, MAX_DEPTH);
			return err;
		}
		chain_str(m, &c, buf, sizeof(buf));
		if (c.total > limit)
			over++;
		if (verbose || c.total > limit)
			printf("# %s %s: %s%s (limit %d)\n", tag, m->funcs[i].name, buf,
			       c.total > limit ? " OVER" : "", limit);
		if (c.total > worst->total)
			*worst = c;
	}
	return over;
}

/* ---- tests ---------------------------------------------------------------- */

static const char *obj_dir(void)
{
	static char dir[4096];

	snprintf(dir, sizeof(dir), "%s/bpf", getenv("O") ? getenv("O") : "build");
	return dir;
}

static glob_t objs;

/* every program of every built object within the verifier's limit */
static void test_objects_within_limit(void)
{
	struct model m;
	const char *why;
	size_t i;

	for (i = 0; i < objs.gl_pathc; i++) {
		struct chain worst;
		int over;

		if (!ASSERT_OK(model_load(objs.gl_pathv[i], &m, &why), objs.gl_pathv[i])) {
			printf("# %s: %s\n", objs.gl_pathv[i], why);
			continue;
		}
		over = model_check(&m, STACK_LIMIT, strrchr(objs.gl_pathv[i], '/') + 1,
				   1, &worst);
		ASSERT_EQ(over, 0, "call chains over 512 bytes of stack");
	}
}

/*
 * The steering object, the one near the limit: its calls are found (the
 * worst chain crosses into .text), and the same check refuses it at one
 * byte under its worst chain.
 */
static void test_steer_refused_below_worst(void)
{
	char path[4200];
	struct chain worst;
	struct model m;
	const char *why;

	snprintf(path, sizeof(path), "%s/idn_steer.bpf.o", obj_dir());
	if (!ASSERT_OK(model_load(path, &m, &why), path)) {
		printf("# %s: %s\n", path, why);
		return;
	}
	if (!ASSERT_EQ(model_check(&m, STACK_LIMIT, "idn_steer", 0, &worst), 0,
		       "within 512"))
		return;
	ASSERT_TRUE(worst.n >= 2, "the worst chain has a bpf-to-bpf call");
	ASSERT_TRUE(m.funcs[worst.idx[0]].frame > 0, "a program's frame was read");
	ASSERT_TRUE(worst.total > 0 && worst.total <= STACK_LIMIT, "worst chain total");
	ASSERT_TRUE(model_check(&m, worst.total - 1, "idn_steer", 0, &worst) > 0,
		    "refused one byte under its worst chain");
}

/* frames read from instructions: stores, loads and pointers into the stack */
static void test_frame_reading(void)
{
	struct bpf_insn prog[] = {
		/* *(u64 *)(r10 - 8) = r1 */
		{ .code = BPF_STX | BPF_MEM | BPF_DW, .dst_reg = 10, .src_reg = 1, .off = -8 },
		/* r2 = r10; r2 += -200 (a helper's buffer) */
		{ .code = BPF_ALU64 | BPF_MOV | BPF_X, .dst_reg = 2, .src_reg = 10 },
		{ .code = BPF_ALU64 | BPF_ADD | BPF_K, .dst_reg = 2, .imm = -200 },
		/* r3 = r2; *(u32 *)(r3 - 4) = 0: 204 deep */
		{ .code = BPF_ALU64 | BPF_MOV | BPF_X, .dst_reg = 3, .src_reg = 2 },
		{ .code = BPF_ST | BPF_MEM | BPF_W, .dst_reg = 3, .off = -4 },
		/* r2 = 0: no longer a stack pointer */
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 2, .imm = 0 },
		{ .code = BPF_ST | BPF_MEM | BPF_W, .dst_reg = 2, .off = -400 },
		{ .code = BPF_JMP | BPF_EXIT },
	};

	ASSERT_EQ(frame_of(prog, 8), 204, "deepest stack byte");
	ASSERT_EQ(frame_of(prog, 1), 8, "a store through r10");
	ASSERT_EQ(round_frame(204), 224, "frames round up to 32");
	ASSERT_EQ(round_frame(0), 32, "an empty frame still counts 32");
}

/*
 * A synthetic call graph: prog -> a -> b is 256 + 160 + 96 = 512 (allowed);
 * prog -> c -> b is 256 + 192 + 96 = 544 (refused), whichever order the
 * calls come in.
 */
static void test_synthetic_chain(void)
{
	struct model m = { .nfuncs = 4 };
	struct chain worst;

	snprintf(m.funcs[0].name, 64, "prog");
	m.funcs[0].entry = 1;
	m.funcs[0].frame = 256;
	snprintf(m.funcs[1].name, 64, "a");
	m.funcs[1].frame = 150;		/* rounds to 160 */
	snprintf(m.funcs[2].name, 64, "b");
	m.funcs[2].frame = 96;
	snprintf(m.funcs[3].name, 64, "c");
	m.funcs[3].frame = 161;		/* rounds to 192 */
	m.funcs[1].ncalls = 1;
	m.funcs[1].calls[0] = 2;
	m.funcs[3].ncalls = 1;
	m.funcs[3].calls[0] = 2;
	m.funcs[0].ncalls = 1;
	m.funcs[0].calls[0] = 1;
	ASSERT_EQ(model_check(&m, STACK_LIMIT, "synthetic", 1, &worst), 0, "512 allowed");
	ASSERT_EQ(worst.total, 512, "prog -> a -> b");
	add_call(&m.funcs[0], 3);
	ASSERT_EQ(model_check(&m, STACK_LIMIT, "synthetic", 1, &worst), 1, "544 refused");
	ASSERT_EQ(worst.total, 544, "prog -> c -> b");
	ASSERT_EQ(worst.n, 3, "three frames");
	/* recursion is reported, not followed forever */
	add_call(&m.funcs[2], 0);
	ASSERT_EQ(model_check(&m, STACK_LIMIT, "synthetic", 0, &worst), -ELOOP, "recursion");
}

static int tool_main(int argc, char **argv)
{
	int limit = STACK_LIMIT, opt, i, over = 0, n;
	struct chain worst;
	struct model m;
	const char *why;

	while ((opt = getopt(argc, argv, "l:")) != -1) {
		if (opt != 'l')
			goto usage;
		limit = atoi(optarg);
		if (limit <= 0)
			goto usage;
	}
	if (optind == argc)
		goto usage;
	for (i = optind; i < argc; i++) {
		if (model_load(argv[i], &m, &why)) {
			fprintf(stderr, "%s: %s\n", argv[i], why);
			return 2;
		}
		n = model_check(&m, limit, argv[i], 1, &worst);
		if (n < 0)
			return 2;
		over += n;
	}
	return over ? 1 : 0;
usage:
	fprintf(stderr, "usage: %s [-l LIMIT] OBJ...   (no arguments: TAP over $O/bpf)\n",
		argv[0]);
	return 2;
}

int main(int argc, char **argv)
{
	char pat[4200];
	int rc;

	if (argc > 1)
		return tool_main(argc, argv);
	snprintf(pat, sizeof(pat), "%s/*.bpf.o", obj_dir());
	if (glob(pat, 0, NULL, &objs) || !objs.gl_pathc) {
		printf("1..0 # SKIP no BPF objects under %s (build them first)\n", obj_dir());
		return 4;
	}
	tap_plan(4);
	TAP_RUN(test_frame_reading);
	TAP_RUN(test_synthetic_chain);
	TAP_RUN(test_objects_within_limit);
	TAP_RUN(test_steer_refused_below_worst);
	rc = tap_done();
	globfree(&objs);
	return rc;
}
