/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* refcap: the record that crosses the kernel boundary (64 bytes). */
#ifndef REFCAP_H
#define REFCAP_H
struct refcap_rec {
	unsigned long long ts_ns;
	unsigned long long dur_ns;
	unsigned int tgid;
	unsigned int tid;
	long long ret;
	unsigned long long a[4];
};
#endif
