/*
 * The configuration model: config.c (ids, drives, the root device, the
 * command line) and api/config_json.c (the JSON shape shared by the config
 * file, GET /vm/config and the PUT handlers): round trips, and errors that
 * name the JSON path.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <cmocka.h>

#include "api/config_json.h"
#include "cli.h"
#include "config.h"
#include "log.h"
#include "module.h"

static json_t *parse_json(const char *text)
{
	json_error_t je;
	json_t *v = json_loads(text, JSON_REJECT_DUPLICATES, &je);
	if (!v)
		fail_msg("test JSON does not parse: %s: %s", text, je.text);
	return v;
}

/* Apply text to a fresh config; returns whether it was accepted. */
static bool apply(const char *text, struct vm_config *cfg, struct cfg_err *err)
{
	vm_config_init(cfg);
	json_t *v = parse_json(text);
	bool ok = cfgjson_apply(v, cfg, err);
	json_decref(v);
	return ok;
}

static const char *full =
    "{\"boot-source\": {\"kernel_image_path\": \"/k\", \"boot_args\": \"console=ttyS0\","
    " \"initrd_path\": \"/i\"},"
    " \"machine-config\": {\"vcpu_count\": 4, \"mem_size_mib\": 512, \"smt\": false,"
    " \"track_dirty_pages\": true, \"huge_pages\": \"None\"},"
    " \"drives\": [{\"drive_id\": \"data\", \"path_on_host\": \"/d.img\", \"is_root_device\": "
    "false,"
    " \"is_read_only\": true, \"cache_type\": \"Unsafe\", \"io_engine\": \"Sync\", \"serial\": "
    "\"S1\"},"
    " {\"drive_id\": \"rootfs\", \"path_on_host\": \"/r.img\", \"is_root_device\": true,"
    " \"is_read_only\": false, \"cache_type\": \"Writeback\", \"io_engine\": \"Async\","
    " \"partuuid\": \"0eaa91a0-01de-4d9a-9f3b-0123456789ab\"}],"
    " \"network-interfaces\": [{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap0\","
    " \"guest_mac\": \"02:00:00:00:00:01\"}],"
    " \"logger\": {\"log_path\": \"/l\", \"level\": \"Debug\", \"show_level\": true,"
    " \"show_log_origin\": false},"
    " \"metrics\": {\"metrics_path\": \"/m\"},"
    " \"vmm-options\": {\"console\": \"file:/c\", \"debug_exit\": true}}";

static void full_config(void **state)
{
	(void)state;
	struct vm_config cfg;
	struct cfg_err err;
	if (!apply(full, &cfg, &err))
		fail_msg("%s", err.msg);
	assert_string_equal(cfg.kernel, "/k");
	assert_string_equal(cfg.initrd, "/i");
	assert_string_equal(cfg.cmdline, "console=ttyS0");
	assert_int_equal(cfg.cpus, 4);
	assert_int_equal(cfg.mem_mib, 512);
	assert_true(cfg.track_dirty_pages);
	assert_int_equal(cfg.ndisks, 2);
	/* The root device comes first: it is /dev/vda. */
	assert_string_equal(cfg.disks[0].id, "rootfs");
	assert_true(cfg.disks[0].root);
	assert_int_equal(cfg.disks[0].engine, DISK_ENGINE_AUTO);
	assert_string_equal(cfg.disks[1].id, "data");
	assert_true(cfg.disks[1].ro);
	assert_int_equal(cfg.disks[1].cache, DISK_CACHE_UNSAFE);
	assert_int_equal(cfg.disks[1].engine, DISK_ENGINE_SYNC);
	assert_string_equal(cfg.disks[1].serial, "S1");
	assert_int_equal(cfg.nnets, 1);
	assert_string_equal(cfg.nets[0].tap, "tap0");
	assert_true(cfg.nets[0].mac_set);
	assert_memory_equal(cfg.nets[0].mac, "\x02\x00\x00\x00\x00\x01", 6);
	assert_int_equal(cfg.nets[0].fd, -1);
	assert_true(cfg.has_logger);
	assert_string_equal(cfg.logger.path, "/l");
	assert_int_equal(cfg.logger.level, VMM_LOG_DEBUG);
	assert_string_equal(cfg.metrics_path, "/m");
	assert_int_equal(cfg.console, CONSOLE_FILE);
	assert_string_equal(cfg.console_path, "/c");
	assert_true(cfg.debug_exit);
	char *cmd = vm_config_cmdline(&cfg);
	assert_string_equal(cmd,
			    "console=ttyS0 root=PARTUUID=0eaa91a0-01de-4d9a-9f3b-0123456789ab rw");
	free(cmd);
	vm_config_free(&cfg);
}

/* dump(apply(x)) applied again gives the same dump. */
static void round_trip(void **state)
{
	(void)state;
	struct vm_config a, b;
	struct cfg_err err;
	assert_true(apply(full, &a, &err));
	json_t *d1 = cfgjson_dump(&a);
	assert_non_null(d1);
	char *text = json_dumps(d1, 0);
	assert_true(apply(text, &b, &err));
	json_t *d2 = cfgjson_dump(&b);
	assert_true(json_equal(d1, d2));
	/* The shape: Firecracker's keys. */
	assert_non_null(json_object_get(d1, "boot-source"));
	assert_non_null(json_object_get(d1, "machine-config"));
	assert_true(json_is_array(json_object_get(d1, "drives")));
	assert_true(json_is_array(json_object_get(d1, "network-interfaces")));
	json_t *m = json_object_get(d1, "machine-config");
	assert_false(json_is_true(json_object_get(m, "smt")));
	assert_string_equal(json_string_value(json_object_get(m, "huge_pages")), "None");
	free(text);
	json_decref(d1);
	json_decref(d2);
	vm_config_free(&a);
	vm_config_free(&b);
}

static void defaults_and_nulls(void **state)
{
	(void)state;
	struct vm_config cfg;
	struct cfg_err err;
	/* Optional fields may be null; absent sections leave the defaults. */
	assert_true(apply("{\"boot-source\": {\"kernel_image_path\": \"/k\", \"initrd_path\": null,"
			  " \"boot_args\": null}, \"drives\": [], \"logger\": null}",
			  &cfg, &err));
	assert_null(cfg.initrd);
	assert_null(cfg.cmdline);
	assert_int_equal(cfg.mem_mib, DEFAULT_MEM_MIB);
	assert_int_equal(cfg.cpus, 1);
	assert_false(cfg.has_logger);
	char *cmd = vm_config_cmdline(&cfg);
	assert_string_equal(cmd, DEFAULT_CMDLINE);
	free(cmd);
	vm_config_free(&cfg);
	assert_true(apply("{}", &cfg, &err));
	vm_config_free(&cfg);
}

/* Each bad configuration is refused with a message naming where. */
static void errors_name_the_path(void **state)
{
	(void)state;
	static const struct {
		const char *json, *expect;
	} cases[] = {
	    {"[]", "the configuration must be a JSON object"},
	    {"{\"balloon\": {}}", "balloon.amount_mib: missing (required)"},
	    {"{\"vsock\": {}}", "vsock: not supported"},
	    {"{\"bogus\": 1}", "bogus: unknown section"},
	    {"{\"boot-source\": []}", "boot-source: expected an object"},
	    {"{\"boot-source\": {}}", "boot-source.kernel_image_path: missing (required)"},
	    {"{\"boot-source\": {\"kernel_image_path\": null}}",
	     "boot-source.kernel_image_path: missing"},
	    {"{\"boot-source\": {\"kernel_image_path\": 5}}",
	     "boot-source.kernel_image_path: expected a string"},
	    {"{\"boot-source\": {\"kernel_image_path\": \"\"}}",
	     "boot-source.kernel_image_path: must not be empty"},
	    {"{\"boot-source\": {\"kernel_image_path\": \"/k\", \"x\": 1}}",
	     "boot-source.x: unknown field"},
	    {"{\"machine-config\": {\"vcpu_count\": 1}}",
	     "machine-config.mem_size_mib: missing (required)"},
	    {"{\"machine-config\": {\"vcpu_count\": 0, \"mem_size_mib\": 128}}",
	     "machine-config.vcpu_count: 0 is out of range"},
	    {"{\"machine-config\": {\"vcpu_count\": 65, \"mem_size_mib\": 128}}",
	     "machine-config.vcpu_count: 65 is out of range"},
	    {"{\"machine-config\": {\"vcpu_count\": 1, \"mem_size_mib\": 7}}",
	     "machine-config.mem_size_mib: 7 is out of range"},
	    {"{\"machine-config\": {\"vcpu_count\": 1.5, \"mem_size_mib\": 128}}",
	     "machine-config.vcpu_count: expected an integer"},
	    {"{\"machine-config\": {\"vcpu_count\": \"2\", \"mem_size_mib\": 128}}",
	     "machine-config.vcpu_count: expected an integer"},
	    {"{\"machine-config\": {\"vcpu_count\": 2, \"mem_size_mib\": 128, \"smt\": true}}",
	     "machine-config.smt: simultaneous multithreading is not supported"},
	    {"{\"machine-config\": {\"vcpu_count\": 2, \"mem_size_mib\": 128, \"smt\": 1}}",
	     "machine-config.smt: expected a boolean"},
	    {"{\"machine-config\": {\"vcpu_count\": 2, \"mem_size_mib\": 128, "
	     "\"huge_pages\": \"4M\"}}",
	     "machine-config.huge_pages: '4M' is not one of None, 2M, 1G, Transparent"},
	    {"{\"vmm-options\": {\"cpu_affinity\": [0, -1]}}",
	     "vmm-options.cpu_affinity: entry 1 is not a host CPU number"},
	    {"{\"vmm-options\": {\"cpu_affinity\": [\"0\"]}}",
	     "vmm-options.cpu_affinity: entry 0 is not a host CPU number"},
	    {"{\"vmm-options\": {\"cpu_affinity\": 0}}",
	     "vmm-options.cpu_affinity: expected an array"},
	    {"{\"vmm-options\": {\"mem_merge\": \"yes\"}}",
	     "vmm-options.mem_merge: expected a boolean"},
	    {"{\"vmm-options\": {\"cpu\": \"nosuch\"}}", "vmm-options.cpu: 'nosuch': "},
	    {"{\"vmm-options\": {\"cpu\": \"baseline,avx2\"}}", "vmm-options.cpu: 'baseline,avx2': "},
	    {"{\"drives\": {}}", "drives: expected an array"},
	    {"{\"drives\": [1]}", "drives[0]: expected an object"},
	    {"{\"drives\": [{\"drive_id\": \"a\", \"is_root_device\": false}]}",
	     "drives[0].path_on_host: missing (required)"},
	    {"{\"drives\": [{\"drive_id\": \"a b\", \"path_on_host\": \"/x\", "
	     "\"is_root_device\": false}]}",
	     "drives[0].drive_id: 'a b' is not a valid id"},
	    {"{\"drives\": [{\"drive_id\": \"a\", \"path_on_host\": \"/x\", "
	     "\"is_root_device\": false, \"cache_type\": \"None\"}]}",
	     "drives[0].cache_type: 'None' is not one of Unsafe, Writeback"},
	    {"{\"drives\": [{\"drive_id\": \"a\", \"path_on_host\": \"/x\", "
	     "\"is_root_device\": false, \"io_engine\": \"Uring\"}]}",
	     "drives[0].io_engine: 'Uring' is not one of Sync, Async"},
	    {"{\"drives\": [{\"drive_id\": \"a\", \"path_on_host\": \"/x\", "
	     "\"is_root_device\": false, \"rate_limiter\": {}}]}",
	     "drives[0].rate_limiter: rate limiters are not supported yet"},
	    {"{\"drives\": [{\"drive_id\": \"a\", \"path_on_host\": \"/x\", "
	     "\"is_root_device\": true, \"partuuid\": \"xyz\"}]}",
	     "drives[0].partuuid: 'xyz' is not a partition UUID"},
	    {"{\"drives\": [{\"drive_id\": \"a\", \"path_on_host\": \"/x\", "
	     "\"is_root_device\": false, \"serial\": \"a,b\"}]}",
	     "drives[0].serial: must be 1..20 printable"},
	    {"{\"drives\": [{\"drive_id\": \"a\", \"path_on_host\": \"/x\", \"is_root_device\": "
	     "true},"
	     " {\"drive_id\": \"b\", \"path_on_host\": \"/y\", \"is_root_device\": true}]}",
	     "drives[1]: a root device is already configured: drive 'a'"},
	    {"{\"drives\": [{\"drive_id\": \"a\", \"path_on_host\": \"/x\", \"is_root_device\": "
	     "false},"
	     " {\"drive_id\": \"a\", \"path_on_host\": \"/y\", \"is_root_device\": false}]}",
	     "drives[1].drive_id: duplicate id 'a'"},
	    {"{\"network-interfaces\": [{\"iface_id\": \"e\", \"host_dev_name\": \"tap0\", "
	     "\"guest_mac\": \"01:00:00:00:00:01\"}]}",
	     "network-interfaces[0].guest_mac: '01:00:00:00:00:01' is not a unicast MAC"},
	    {"{\"network-interfaces\": [{\"iface_id\": \"e\", \"host_dev_name\": "
	     "\"a-very-long-interface-name\"}]}",
	     "network-interfaces[0].host_dev_name: too long"},
	    {"{\"network-interfaces\": [{\"iface_id\": \"e\"}]}",
	     "network-interfaces[0].host_dev_name: missing (required)"},
	    {"{\"network-interfaces\": [{\"iface_id\": \"e\", \"host_dev_name\": \"t0\"}, "
	     "{\"iface_id\": \"f\", \"host_dev_name\": \"t0\"}]}",
	     "network-interfaces[1]: host_dev_name 't0' is already used"},
	    {"{\"logger\": {\"level\": \"Loud\"}}", "logger.level: 'Loud' is not one of"},
	    {"{\"logger\": {\"module\": \"x\"}}", "logger.module: filtering by module"},
	    {"{\"metrics\": {}}", "metrics.metrics_path: missing (required)"},
	    {"{\"vmm-options\": {\"console\": \"tty\"}}",
	     "vmm-options.console: 'tty' is not one of stdio, none, file:PATH"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct vm_config cfg;
		struct cfg_err err;
		bool ok = apply(cases[i].json, &cfg, &err);
		if (ok || strncmp(err.msg, cases[i].expect, strlen(cases[i].expect)) != 0)
			fail_msg("case %zu: %s -> %s, expected \"%s\"", i, cases[i].json,
				 ok ? "accepted" : err.msg, cases[i].expect);
		vm_config_free(&cfg);
	}
}

/* huge_pages: "Transparent" is the core's; "2M" and "1G" need the
 * hugepages module, and are refused by name in a build without it. */
static void huge_pages_and_modules(void **state)
{
	(void)state;
	struct vm_config cfg;
	struct cfg_err err;
	assert_true(apply("{\"machine-config\": {\"vcpu_count\": 1, \"mem_size_mib\": 128, "
			  "\"huge_pages\": \"Transparent\"}, \"vmm-options\": {\"mem_merge\": true, "
			  "\"cpu_affinity\": [1], \"cpu\": \"baseline,-avx2,+x2apic\"}}",
			  &cfg, &err));
	assert_int_equal(cfg.huge_pages, HUGE_PAGES_TRANSPARENT);
	assert_true(cfg.mem_merge);
	assert_int_equal(cfg.ncpu_affinity, 1);
	assert_int_equal(cfg.cpu_affinity[0], 1);
	json_t *dump = cfgjson_dump(&cfg);
	json_t *m = json_object_get(dump, "machine-config");
	assert_string_equal(json_string_value(json_object_get(m, "huge_pages")), "Transparent");
	json_t *o = json_object_get(dump, "vmm-options");
	assert_true(json_is_true(json_object_get(o, "mem_merge")));
	assert_int_equal(json_integer_value(json_array_get(json_object_get(o, "cpu_affinity"), 0)), 1);
	assert_string_equal(json_string_value(json_object_get(o, "cpu")), "baseline,-avx2,+x2apic");
	json_decref(dump);
	vm_config_free(&cfg);

	const char *sizes[] = {"2M", "1G"};
	for (int i = 0; i < 2; i++) {
		char json[160];
		snprintf(json, sizeof(json),
			 "{\"machine-config\": {\"vcpu_count\": 1, \"mem_size_mib\": 1024, "
			 "\"huge_pages\": \"%s\"}}",
			 sizes[i]);
		bool ok = apply(json, &cfg, &err);
		if (module_find("hugepages")) {
			assert_true(ok);
			assert_int_equal(cfg.huge_pages, i ? HUGE_PAGES_1G : HUGE_PAGES_2M);
		} else {
			assert_false(ok);
			assert_non_null(strstr(err.msg, "not built in (module hugepages)"));
		}
		vm_config_free(&cfg);
	}
}

static void machine_put_and_patch(void **state)
{
	(void)state;
	struct vm_config cfg;
	struct machine_cfg m;
	struct cfg_err err;
	vm_config_init(&cfg);
	cfg.track_dirty_pages = true;
	/* PATCH keeps what it does not name. */
	json_t *v = parse_json("{\"mem_size_mib\": 256}");
	assert_true(cfgjson_machine(v, "", true, &cfg, &m, &err));
	assert_int_equal(m.mem_mib, 256);
	assert_int_equal(m.cpus, 1);
	assert_true(m.track_dirty_pages);
	json_decref(v);
	/* PUT resets the optional ones to their defaults. */
	v = parse_json("{\"mem_size_mib\": 256, \"vcpu_count\": 2}");
	assert_true(cfgjson_machine(v, "", false, &cfg, &m, &err));
	assert_false(m.track_dirty_pages);
	cfgjson_commit_machine(&cfg, &m);
	assert_int_equal(cfg.cpus, 2);
	json_decref(v);
	/* An empty PATCH is refused; PUT needs both numbers. */
	v = parse_json("{}");
	assert_false(cfgjson_machine(v, "", true, &cfg, &m, &err));
	assert_non_null(strstr(err.msg, "nothing to update"));
	assert_false(cfgjson_machine(v, "", false, &cfg, &m, &err));
	assert_string_equal(err.msg, "vcpu_count: missing (required)");
	json_decref(v);
	vm_config_free(&cfg);
}

static void drive_id_must_match_path(void **state)
{
	(void)state;
	struct disk_config d;
	struct cfg_err err;
	json_t *v = parse_json("{\"drive_id\": \"a\", \"path_on_host\": \"/x\", "
			       "\"is_root_device\": false}");
	assert_false(cfgjson_drive(v, "", "b", &d, &err));
	assert_string_equal(err.msg, "drive_id: 'a' does not match the id in the path ('b')");
	assert_true(cfgjson_drive(v, "", "a", &d, &err));
	assert_string_equal(d.path, "/x");
	assert_int_equal(d.cache, DISK_CACHE_WRITEBACK);
	json_decref(v);
	const char *path;
	v = parse_json("{\"drive_id\": \"a\", \"path_on_host\": \"/y\"}");
	assert_true(cfgjson_drive_patch(v, "a", &path, &err));
	assert_string_equal(path, "/y");
	json_decref(v);
	v = parse_json("{\"drive_id\": \"a\"}");
	assert_false(cfgjson_drive_patch(v, "a", &path, &err));
	json_decref(v);
	v = parse_json("{\"drive_id\": \"a\", \"path_on_host\": \"/y\", \"is_read_only\": true}");
	assert_false(cfgjson_drive_patch(v, "a", &path, &err));
	assert_string_equal(err.msg, "is_read_only: unknown field");
	json_decref(v);
}

static void drives_and_root(void **state)
{
	(void)state;
	struct vm_config cfg;
	char why[200];
	vm_config_init(&cfg);
	struct disk_config a = {.id = "a", .path = "/a"},
			   b = {.id = "b", .path = "/b", .root = true};
	assert_true(vm_config_put_disk(&cfg, &a, why, sizeof(why)));
	assert_true(vm_config_put_disk(&cfg, &b, why, sizeof(why)));
	assert_string_equal(cfg.disks[0].id, "b");
	/* Replacing by id keeps the count; the root may be updated in place. */
	b.ro = true;
	assert_true(vm_config_put_disk(&cfg, &b, why, sizeof(why)));
	assert_int_equal(cfg.ndisks, 2);
	a.root = true;
	assert_false(vm_config_put_disk(&cfg, &a, why, sizeof(why)));
	char *cmd = vm_config_cmdline(&cfg);
	assert_string_equal(cmd, DEFAULT_CMDLINE " root=/dev/vda ro");
	free(cmd);
	/* At most VMM_MAX_DISKS. */
	for (unsigned i = 0; i < VMM_MAX_DISKS - 2; i++) {
		struct disk_config d = {.path = "/d"};
		snprintf(d.id, sizeof(d.id), "d%u", i);
		assert_true(vm_config_put_disk(&cfg, &d, why, sizeof(why)));
	}
	struct disk_config extra = {.id = "extra", .path = "/e"};
	assert_false(vm_config_put_disk(&cfg, &extra, why, sizeof(why)));
	assert_non_null(strstr(why, "too many drives"));
	vm_config_free(&cfg);
}

static void names_ids_macs(void **state)
{
	(void)state;
	struct vm_config cfg;
	vm_config_init(&cfg);
	cfg.ndisks = 3;
	strcpy(cfg.disks[1].id, "disk0");
	cfg.nnets = 1;
	vm_config_name_devices(&cfg);
	assert_string_equal(cfg.disks[0].id, "disk0_1");
	assert_string_equal(cfg.disks[1].id, "disk0");
	assert_string_equal(cfg.disks[2].id, "disk2");
	assert_string_equal(cfg.nets[0].id, "net0");
	cfg.nnets = 0;
	assert_true(vm_config_valid_id("rootfs_1-a", VMM_ID_MAX));
	assert_false(vm_config_valid_id("", VMM_ID_MAX));
	assert_false(vm_config_valid_id("a/b", VMM_ID_MAX));
	assert_false(vm_config_valid_id("a.b", VMM_ID_MAX));
	assert_false(vm_config_valid_id("abcd", 3));
	uint8_t mac[6];
	assert_true(vm_config_parse_mac("aa:BB:cc:00:11:22", mac));
	assert_memory_equal(mac, "\xaa\xbb\xcc\x00\x11\x22", 6);
	assert_false(vm_config_parse_mac("ab:BB:cc:00:11:22", mac)); /* multicast */
	assert_false(vm_config_parse_mac("00:00:00:00:00:00", mac));
	assert_false(vm_config_parse_mac("aa:BB:cc:00:11", mac));
	assert_false(vm_config_parse_mac("aa-BB-cc-00-11-22", mac));
	assert_false(vm_config_parse_mac("aa:BB:cc:00:11:2g", mac));
	assert_true(vm_config_valid_ifname("tap0"));
	assert_false(vm_config_valid_ifname(".."));
	assert_false(vm_config_valid_ifname("a b"));
	assert_false(vm_config_valid_ifname("sixteen-chars-xx"));
	assert_true(vm_config_valid_partuuid("0eaa91a0-01de-4d9a-9f3b-0123456789ab"));
	assert_false(vm_config_valid_partuuid("0eaa91a0-01de-4d9a-9f3b-0123456789a"));
	char why[200];
	assert_false(vm_config_bootable(&cfg, why, sizeof(why)));
	assert_non_null(strstr(why, "no kernel"));
	assert_int_equal(vm_config_set_str(&cfg.kernel, "/k"), 0);
	assert_true(vm_config_bootable(&cfg, why, sizeof(why)));
	struct net_config n = {.id = "eth0", .tap = "tap0", .fd = -1};
	assert_true(vm_config_put_net(&cfg, &n, why, sizeof(why)));
	struct net_config n2 = {.id = "eth1", .tap = "tap0", .fd = -1};
	assert_false(vm_config_put_net(&cfg, &n2, why, sizeof(why)));
	assert_non_null(strstr(why, "host_dev_name 'tap0' is already used by interface 'eth0'"));
	vm_config_free(&cfg);
}

static void load_file_errors(void **state)
{
	(void)state;
	struct vm_config cfg;
	struct cfg_err err;
	char path[] = "/tmp/vmm-test-config-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	const char *text = "{\n  \"machine-config\": {\"vcpu_count\": 2,,}\n}\n";
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	vm_config_init(&cfg);
	assert_false(cfgjson_load_file(path, &cfg, &err));
	char want[128];
	snprintf(want, sizeof(want), "%s:2:", path);
	assert_memory_equal(err.msg, want, strlen(want));
	/* Duplicate keys are refused too. */
	fd = open(path, O_WRONLY | O_TRUNC);
	text = "{\"metrics\": {\"metrics_path\": \"/a\", \"metrics_path\": \"/b\"}}";
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	assert_false(cfgjson_load_file(path, &cfg, &err));
	assert_non_null(strstr(err.msg, "duplicate"));
	/* A semantic error names the file and the JSON path. */
	fd = open(path, O_WRONLY | O_TRUNC);
	text = "{\"drives\": [{\"drive_id\": \"a\"}]}";
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	assert_false(cfgjson_load_file(path, &cfg, &err));
	snprintf(want, sizeof(want), "%s: drives[0].", path);
	assert_memory_equal(err.msg, want, strlen(want));
	unlink(path);
	assert_false(cfgjson_load_file(path, &cfg, &err));
	assert_non_null(strstr(err.msg, path));
	vm_config_free(&cfg);
}

/* The balloon section: Firecracker's fields, strict, and back. */
static void balloon_section(void **state)
{
	(void)state;
	struct vm_config cfg;
	struct cfg_err err;
	assert_true(apply("{\"balloon\": {\"amount_mib\": 64, \"deflate_on_oom\": true,"
			  " \"stats_polling_interval_s\": 5, \"free_page_reporting\": true,"
			  " \"free_page_hinting\": false}}",
			  &cfg, &err));
	assert_true(cfg.balloon.enabled);
	assert_int_equal(cfg.balloon.amount_mib, 64);
	assert_true(cfg.balloon.deflate_on_oom);
	assert_int_equal(cfg.balloon.stats_interval_s, 5);
	assert_true(cfg.balloon.free_page_reporting);
	json_t *d = cfgjson_dump(&cfg), *b = json_object_get(d, "balloon");
	assert_int_equal(json_integer_value(json_object_get(b, "amount_mib")), 64);
	assert_true(json_is_true(json_object_get(b, "deflate_on_oom")));
	assert_int_equal(json_integer_value(json_object_get(b, "stats_polling_interval_s")), 5);
	assert_true(json_is_true(json_object_get(b, "free_page_reporting")));
	/* What GET /vm/config gives back configures the same balloon. */
	struct vm_config again;
	vm_config_init(&again);
	assert_true(cfgjson_apply(d, &again, &err));
	assert_memory_equal(&again.balloon, &cfg.balloon, sizeof(cfg.balloon));
	json_decref(d);
	vm_config_free(&again);
	vm_config_free(&cfg);
	/* No balloon: no section. */
	assert_true(apply("{}", &cfg, &err));
	d = cfgjson_dump(&cfg);
	assert_null(json_object_get(d, "balloon"));
	json_decref(d);
	static const struct {
		const char *json, *expect;
	} bad[] = {
	    {"{\"balloon\": {\"amount_mib\": 1}}", "balloon.deflate_on_oom: missing (required)"},
	    {"{\"balloon\": {\"amount_mib\": -1, \"deflate_on_oom\": false}}",
	     "balloon.amount_mib: -1 is out of range (0..1048576)"},
	    {"{\"balloon\": {\"amount_mib\": 1048577, \"deflate_on_oom\": false}}",
	     "balloon.amount_mib: 1048577 is out of range"},
	    {"{\"balloon\": {\"amount_mib\": \"1\", \"deflate_on_oom\": false}}",
	     "balloon.amount_mib: expected an integer"},
	    {"{\"balloon\": {\"amount_mib\": 1, \"deflate_on_oom\": 1}}",
	     "balloon.deflate_on_oom: expected a boolean"},
	    {"{\"balloon\": {\"amount_mib\": 1, \"deflate_on_oom\": false,"
	     " \"stats_polling_interval_s\": 65536}}",
	     "balloon.stats_polling_interval_s: 65536 is out of range (0..65535)"},
	    {"{\"balloon\": {\"amount_mib\": 1, \"deflate_on_oom\": false,"
	     " \"free_page_hinting\": true}}",
	     "balloon.free_page_hinting: free page hinting is not supported"},
	    {"{\"balloon\": {\"amount_mib\": 1, \"deflate_on_oom\": false, \"x\": 1}}",
	     "balloon.x: unknown field"},
	    {"{\"balloon\": []}", "balloon: expected an object"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (apply(bad[i].json, &cfg, &err))
			fail_msg("accepted: %s", bad[i].json);
		if (!strstr(err.msg, bad[i].expect))
			fail_msg("%s: \"%s\", expected \"%s\"", bad[i].json, err.msg,
				 bad[i].expect);
		vm_config_free(&cfg);
	}
	/* The size against RAM is the VMM's check at boot (config.c). */
	char why[200];
	vm_config_init(&cfg);
	assert_true(vm_config_balloon_fits(&cfg, DEFAULT_MEM_MIB, why, sizeof(why)));
	assert_false(vm_config_balloon_fits(&cfg, DEFAULT_MEM_MIB + 1, why, sizeof(why)));
	assert_non_null(strstr(why, "more than the guest's RAM (128 MiB)"));
	vm_config_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(balloon_section),
	    cmocka_unit_test(full_config),	     cmocka_unit_test(round_trip),
	    cmocka_unit_test(defaults_and_nulls),    cmocka_unit_test(errors_name_the_path),
	    cmocka_unit_test(machine_put_and_patch), cmocka_unit_test(drive_id_must_match_path),
	    cmocka_unit_test(drives_and_root),	     cmocka_unit_test(names_ids_macs),
	    cmocka_unit_test(load_file_errors),	     cmocka_unit_test(huge_pages_and_modules),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
