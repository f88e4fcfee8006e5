#!/usr/bin/env python3
"""Wrap the test guest's ELF as a bzImage (boot protocol 2.15, 64-bit entry).

    mkbzimage.py guest.elf guest.bzImage

Layout: boot sector + 1 setup sector (real-mode header at 0x1f1; no
usable real-mode code: the 16-bit entry just halts), then the flat
protected-mode payload that must be loaded at code32_start = 0x100000.
A VMM jumps to payload + 0x200 in 64-bit mode with RSI = zero page.
Written from Documentation/arch/x86/boot.rst; stdlib only.
"""
import struct
import sys

LOAD = 0x100000
ENTRY64 = 0x200
KERNEL_INFO = 0x100
SETUP_SECTS = 1
CMDLINE_SIZE = 4095


def load_segments(path):
    data = open(path, "rb").read()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        sys.exit(f"{path}: not a little-endian ELF64")
    e_entry, e_phoff = struct.unpack_from("<QQ", data, 0x18)
    e_phentsize, e_phnum = struct.unpack_from("<HH", data, 0x36)
    if e_entry != LOAD + ENTRY64:
        sys.exit(f"{path}: entry 0x{e_entry:x}, expected 0x{LOAD + ENTRY64:x}")
    segs = []
    for i in range(e_phnum):
        p_type, _flags, off, _vaddr, paddr, filesz, memsz, _align = struct.unpack_from(
            "<IIQQQQQQ", data, e_phoff + i * e_phentsize)
        if p_type == 1:  # PT_LOAD
            if paddr < LOAD:
                sys.exit(f"{path}: segment below 0x{LOAD:x}")
            segs.append((paddr, data[off:off + filesz], memsz))
    if not segs:
        sys.exit(f"{path}: no PT_LOAD segment")
    return segs


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    segs = load_segments(sys.argv[1])
    file_end = max(paddr + len(b) for paddr, b, _ in segs)
    mem_end = max(paddr + memsz for paddr, _, memsz in segs)
    payload = bytearray(file_end - LOAD)
    for paddr, b, _ in segs:
        payload[paddr - LOAD:paddr - LOAD + len(b)] = b
    if payload[KERNEL_INFO:KERNEL_INFO + 4] != b"LToP":
        sys.exit("kernel_info not found at payload + 0x100")
    payload += bytes(-len(payload) % 16)
    init_size = (mem_end - LOAD + 0xfff) & ~0xfff

    setup = bytearray((SETUP_SECTS + 1) * 512)

    def put(fmt, off, *vals):
        struct.pack_into("<" + fmt, setup, off, *vals)

    stub = 0x270                       # 16-bit entry: cli; hlt; jmp $-1
    version = 0x280
    setup[stub:stub + 4] = b"\xfa\xf4\xeb\xfd"
    vs = b"vmm-test-guest\0"
    setup[version:version + len(vs)] = vs

    put("B", 0x1f1, SETUP_SECTS)           # setup_sects
    put("H", 0x1f2, 0)                     # root_flags
    put("I", 0x1f4, len(payload) // 16)    # syssize
    put("H", 0x1fa, 0xffff)                # vid_mode: normal
    put("H", 0x1fc, 0)                     # root_dev
    put("H", 0x1fe, 0xaa55)                # boot_flag
    put("BB", 0x200, 0xeb, stub - 0x202)   # jump to the 16-bit stub
    setup[0x202:0x206] = b"HdrS"
    put("H", 0x206, 0x020f)                # protocol 2.15
    put("I", 0x208, 0)                     # realmode_swtch
    put("H", 0x20c, 0x1000)                # start_sys_seg (obsolete)
    put("H", 0x20e, version - 0x200)       # kernel_version
    put("B", 0x210, 0)                     # type_of_loader (loader fills)
    put("B", 0x211, 0x01)                  # loadflags: LOADED_HIGH
    put("H", 0x212, 0x8000)                # setup_move_size
    put("I", 0x214, LOAD)                  # code32_start
    put("I", 0x218, 0)                     # ramdisk_image
    put("I", 0x21c, 0)                     # ramdisk_size
    put("I", 0x220, 0)                     # bootsect_kludge
    put("H", 0x224, 0)                     # heap_end_ptr
    put("I", 0x228, 0)                     # cmd_line_ptr
    put("I", 0x22c, 0x7fffffff)            # initrd_addr_max
    put("I", 0x230, 0x100000)              # kernel_alignment (not relocatable)
    put("B", 0x234, 0)                     # relocatable_kernel
    put("B", 0x235, 12)                    # min_alignment
    put("H", 0x236, 0x0001)                # xloadflags: XLF_KERNEL_64
    put("I", 0x238, CMDLINE_SIZE)          # cmdline_size
    put("I", 0x23c, 0)                     # hardware_subarch: default
    put("Q", 0x240, 0)                     # hardware_subarch_data
    put("I", 0x248, 0)                     # payload_offset (no compressed payload)
    put("I", 0x24c, 0)                     # payload_length
    put("Q", 0x250, 0)                     # setup_data
    put("Q", 0x258, LOAD)                  # pref_address
    put("I", 0x260, init_size)             # init_size
    put("I", 0x264, 0)                     # handover_offset: no EFI
    put("I", 0x268, KERNEL_INFO)           # kernel_info_offset

    with open(sys.argv[2], "wb") as f:
        f.write(setup)
        f.write(payload)


if __name__ == "__main__":
    main()
