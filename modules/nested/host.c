/*
 * Can this host run nested guests? Three things must hold: the CPU is the
 * vendor whose extension is asked for (vmx: Intel VT-x, svm: AMD-V), the
 * vendor's KVM module is loaded with nesting on (its `nested` parameter),
 * and KVM reports KVM_CAP_NESTED_STATE, without which a nested guest could
 * not be snapshotted or migrated. Each one missing is named, with the
 * command that fixes it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "boot/cpuid.h"
#include "kvm.h"
#include "log.h"
#include "nested.h"

int nested_param_value(const char *text)
{
	if (strcmp(text, "Y") == 0 || strcmp(text, "1") == 0)
		return 1;
	if (strcmp(text, "N") == 0 || strcmp(text, "0") == 0)
		return 0;
	return -1;
}

static const char *vendor_module(enum cpu_vendor v)
{
	return v == CPU_VENDOR_AMD ? "kvm_amd" : "kvm_intel";
}

static int read_param(const char *sysfs_root, enum cpu_vendor v)
{
	char path[256], text[16] = "";
	snprintf(path, sizeof(path), "%s/module/%s/parameters/nested", sysfs_root,
		 vendor_module(v));
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	bool ok = fgets(text, sizeof(text), f) != NULL;
	fclose(f);
	text[strcspn(text, "\n")] = '\0';
	return ok ? nested_param_value(text) : -1;
}

enum cpu_vendor nested_host_vendor(int kvm_fd)
{
	struct cpuid_buf *sup = malloc(sizeof(*sup));
	enum cpu_vendor v = CPU_VENDOR_OTHER;
	if (sup && cpuid_get_supported(kvm_fd, sup) == 0)
		v = cpu_vendor_of((struct kvm_cpuid2 *)sup);
	free(sup);
	return v;
}

void nested_host_probe(int kvm_fd, const char *sysfs_root, struct nested_host *h)
{
	h->vendor = nested_host_vendor(kvm_fd);
	h->param = read_param(sysfs_root, h->vendor);
	h->cap = ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NESTED_STATE) > 0;
}

/* vmx on AMD, svm on Intel, either elsewhere. */
static int wrong_vendor(const char *feature, enum cpu_vendor want, enum cpu_vendor host, char *msg,
			size_t n)
{
	if (host == CPU_VENDOR_OTHER) {
		snprintf(msg, n,
			 "--cpu +%s: this host's KVM reports neither an Intel nor an AMD CPU; "
			 "nesting needs VT-x (+vmx) or AMD-V (+svm)",
			 feature);
	} else {
		snprintf(msg, n,
			 "--cpu +%s: %s is %s's hardware virtualization and this host is %s: "
			 "ask for +%s instead",
			 feature, feature, want == CPU_VENDOR_INTEL ? "Intel" : "AMD",
			 host == CPU_VENDOR_INTEL ? "Intel" : "AMD",
			 host == CPU_VENDOR_INTEL ? "vmx" : "svm");
	}
	return VMM_EXIT_KVM_CAP;
}

/* "kvm_intel is not loaded (...), and KVM does not report ..." */
static void describe_missing(const char *mod, const struct nested_host *h, char *out, size_t n)
{
	out[0] = '\0';
	if (h->param < 0)
		snprintf(out, n, "%s is not loaded (no /sys/module/%s/parameters/nested)", mod,
			 mod);
	else if (h->param == 0)
		snprintf(out, n, "nesting is off in %s (/sys/module/%s/parameters/nested)", mod,
			 mod);
	size_t used = strlen(out);
	if (!h->cap)
		snprintf(out + used, n - used, "%sKVM does not report KVM_CAP_NESTED_STATE",
			 used ? ", and " : "");
}

int nested_diagnose(const char *feature, const struct nested_host *h, char *msg, size_t n)
{
	enum cpu_vendor want = strcmp(feature, "svm") == 0 ? CPU_VENDOR_AMD : CPU_VENDOR_INTEL;
	if (h->vendor != want)
		return wrong_vendor(feature, want, h->vendor, msg, n);
	if (h->param == 1 && h->cap)
		return 0;
	const char *mod = vendor_module(want);
	char missing[256];
	describe_missing(mod, h, missing, sizeof(missing));
	if (h->param == 1) /* on, yet no capability: the kernel is too old */
		snprintf(msg, n,
			 "--cpu +%s: this host cannot run nested guests: %s (Linux 4.19 or later "
			 "has it)",
			 feature, missing);
	else
		snprintf(msg, n,
			 "--cpu +%s: this host cannot run nested guests: %s. On a host with %s, "
			 "enable nesting with: modprobe -r %s && modprobe %s nested=1",
			 feature, missing, want == CPU_VENDOR_INTEL ? "VT-x" : "AMD-V", mod, mod);
	return VMM_EXIT_KVM_CAP;
}

static int check_feature(const char *feature, unsigned cpus)
{
	int kvm_fd, rc = kvm_open_checked(cpus, &kvm_fd);
	if (rc)
		return rc; /* the message is printed; the boot would say the same */
	struct nested_host h;
	char msg[512];
	nested_host_probe(kvm_fd, "/sys", &h);
	close(kvm_fd);
	rc = nested_diagnose(feature, &h, msg, sizeof(msg));
	if (rc)
		vmm_err("%s", msg);
	return rc;
}

int nested_check(const struct vm_config *cfg)
{
	static const char *const features[] = {"vmx", "svm"};
	for (size_t i = 0; i < sizeof(features) / sizeof(features[0]); i++) {
		if (!cpu_config_shows(&cfg->cpu, features[i]))
			continue;
		int rc = check_feature(features[i], cfg->cpus);
		if (rc)
			return rc;
	}
	return 0;
}
