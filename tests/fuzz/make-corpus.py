#!/usr/bin/env python3
# make-corpus.py - writes the seed corpora in corpus/<target>/ (run once;
# the output is committed).
import os
import struct

here = os.path.dirname(os.path.abspath(__file__))


def hdr(t, flags=0, fence=0, ctx=0, ring=0):
    return struct.pack('<IIQIB3x', t, flags, fence, ctx, ring)


def write(target, name, data):
    d = os.path.join(here, 'corpus', target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data)


# ---- gpu_cmd: flag byte, then (u16 length, command)* ----
def cmds(*cs, flag=0):
    out = bytes([flag])
    for c in cs:
        out += struct.pack('<H', len(c)) + c
    return out


CTX_CREATE, CTX_ATTACH, SUBMIT = 0x200, 0x202, 0x207
BLOB, UNREF, ATTACH_BACKING, DETACH_BACKING = 0x10c, 0x102, 0x106, 0x107
GET_DISPLAY_INFO, GET_CAPSET_INFO, GET_CAPSET = 0x100, 0x108, 0x109
# VIRTIO_GPU_BLOB_FLAG_USE_MAPPABLE, _USE_SHAREABLE, _USE_CROSS_DEVICE,
# VIRTIO_GPU_BLOB_FLAG_RDONLY (feature bit 16); 0x100 was the userptr flag
# of the extension's previous version and is an unknown flag now.
MAPPABLE, SHAREABLE, CROSS_DEVICE, RDONLY, OLD_USERPTR = 0x1, 0x2, 0x4, 0x200, 0x100


def ctx_create(ctx, init=16):
    name = b'vgpu-compute'
    return hdr(CTX_CREATE, ctx=ctx) + struct.pack('<II', len(name), init) + name.ljust(64, b'\0')


def blob(res, mem, flags, size, entries, ctx=0):
    c = hdr(BLOB, ctx=ctx) + struct.pack('<IIIIQQ', res, mem, flags, len(entries), 0, size)
    for a, l in entries:
        c += struct.pack('<QII', a, l, 0)
    return c


def attach(ctx, res):
    return hdr(CTX_ATTACH, ctx=ctx) + struct.pack('<II', res, 0)


def op(opc, dst=0, doff=0, src=0, soff=0, ln=0, arg0=0):
    return struct.pack('<IIIIQQQQQQ', opc, 0, dst, src, doff, soff, ln, arg0, 0, 0)


def submit(ctx, ops, status_res=0, status_off=0, flags=0, fence=0):
    s = struct.pack('<IIIIQ', 0x43504756, len(ops), status_res, 0, status_off) + b''.join(ops)
    return hdr(SUBMIT, flags=flags, fence=fence, ctx=ctx, ring=1) + struct.pack('<II', len(s), 0) + s


write('gpu_cmd', 'info', cmds(hdr(GET_DISPLAY_INFO),
                              hdr(GET_CAPSET_INFO) + struct.pack('<II', 0, 0),
                              hdr(GET_CAPSET) + struct.pack('<II', 16, 1)))
setup = [ctx_create(1),
         blob(1, 3, 0, 8192, [(0x10000, 4096), (0x30000, 4096)], ctx=1),
         blob(2, 1, 0, 8192, [(0x12000, 8192)]),
         blob(3, 1, RDONLY, 4096, [(0x31000, 4096)]),
         attach(1, 1), attach(1, 2), attach(1, 3)]
write('gpu_cmd', 'compute', cmds(*setup, submit(1, [
    op(2, dst=1, ln=4096, arg0=0x3f800000),
    op(1, dst=2, src=1, ln=8192),
    op(4, dst=2, src=1, ln=4096, arg0=0x40000000),
    op(3, dst=2, doff=8, src=1, ln=100, arg0=7),
    op(5, dst=2, doff=16, src=1, ln=64),
    op(0)], status_res=2, status_off=4096, flags=3, fence=9)))
# Version 3: an op followed by its payload, padded to 8 bytes.
def op3(opc, arg0=0, dst=0, doff=0, src=0, soff=0, arg1=0, arg2=0, payload=b''):
    o = struct.pack('<IIIIQQQQQQ', opc, 0, dst, src, doff, soff, len(payload), arg0, arg1, arg2)
    return o + payload + b'\0' * (-len(payload) % 8)


src = b'__kernel void k(__global float *x, const float a) { x[0] = a; }'
pin = struct.pack('<IIQ', 0, 0, len(src)) + src
disp = (struct.pack('<II', 1, 2) + struct.pack('<9Q', 0, 0, 0, 64, 0, 0, 16, 0, 0) +
        struct.pack('<IIIIQQ', 0, 3, 2, 0, 0, 256) + struct.pack('<IIIIQQ', 2, 0, 0, 0, 0, 4) +
        struct.pack('<f', 2.0) + b'\0' * 4)
write('gpu_cmd', 'programs', cmds(*setup, submit(1, [
    op3(8, arg0=1, src=1, arg1=len(pin), dst=2, arg2=4096),
    op3(11, arg0=1, arg1=1, dst=2, arg2=1024, payload=b'k\0'),
    op3(13, arg0=1, payload=disp),
    op3(14, arg0=1, dst=2, arg2=4096),
    op3(12, arg0=1),
    op3(10, arg0=1)], status_res=2, status_off=4096)))
write('gpu_cmd', 'errors', cmds(*setup, submit(1, [op(2, dst=3, ln=4)], status_res=2),
                                submit(1, [op(1, dst=1, src=1, doff=4, ln=64)]),
                                hdr(DETACH_BACKING) + struct.pack('<II', 1, 0),
                                submit(1, [op(2, dst=1, ln=4)]),
                                hdr(ATTACH_BACKING) + struct.pack('<II', 1, 1) + struct.pack('<QII', 0x20000, 8192, 0),
                                hdr(UNREF) + struct.pack('<II', 1, 0), flag=1))
# Blob flags the device refuses (the first byte even: the feature is on),
# then the read-only blob it takes.
write('gpu_cmd', 'flags', cmds(ctx_create(1),
                               blob(4, 1, OLD_USERPTR, 4096, [(0x14000, 4096)]),
                               blob(4, 1, OLD_USERPTR | RDONLY, 4096, [(0x14000, 4096)]),
                               blob(4, 1, RDONLY | MAPPABLE, 4096, [(0x14000, 4096)]),
                               blob(4, 3, RDONLY | SHAREABLE, 4096, [(0x14000, 4096)], ctx=1),
                               blob(4, 1, RDONLY | CROSS_DEVICE, 4096, [(0x14000, 4096)]),
                               blob(4, 2, RDONLY, 4096, [(0x14000, 4096)], ctx=1),
                               blob(4, 3, RDONLY, 4096, [(0x14000, 4096)], ctx=1),
                               attach(1, 4),
                               submit(1, [op(2, dst=4, ln=4)]),
                               hdr(DETACH_BACKING) + struct.pack('<II', 4, 0),
                               hdr(ATTACH_BACKING) + struct.pack('<II', 4, 1) + struct.pack('<QII', 0x15000, 4096, 0),
                               submit(1, [op(2, dst=4, ln=4)])))

# ---- vhost_user: the byte stream of messages ----
def msg(req, payload=b'', flags=1):
    return struct.pack('<III', req, flags, len(payload)) + payload


NEED = 1 | 8
feat = (1 << 32) | 1 | (1 << 3) | (1 << 4) | (1 << 5) | (1 << 30)
stream = (msg(3) + msg(1) + msg(15) + msg(16, struct.pack('<Q', (1 << 3) | (1 << 9) | (1 << 5)))
          + msg(2, struct.pack('<Q', feat), NEED)
          + msg(24, struct.pack('<III', 0, 16, 0) + bytes(16))
          + msg(24, struct.pack('<III', 12, 4, 0) + bytes(4))
          + msg(25, struct.pack('<III', 4, 4, 0) + struct.pack('<I', 1), NEED)
          + msg(8, struct.pack('<II', 0, 256), NEED)
          + msg(9, struct.pack('<IIQQQQ', 0, 0, 0x1000, 0x3000, 0x2000, 0), NEED)
          + msg(10, struct.pack('<II', 0, 0), NEED)
          + msg(18, struct.pack('<II', 0, 1), NEED)
          + msg(11, struct.pack('<II', 0, 0))
          + msg(17) + msg(4))
write('vhost_user', 'handshake', stream)
write('vhost_user', 'errors', msg(5, struct.pack('<II', 1, 0) + struct.pack('<QQQQ', 0, 4096, 0, 0), NEED)
      + msg(12, struct.pack('<Q', 0x100), NEED) + msg(99, b'', NEED) + msg(8, b'\0' * 4, NEED)
      + msg(2, struct.pack('<Q', 1 << 60), NEED) + msg(1, flags=2))

# ---- vring: ring size byte, u16 start index, then guest RAM from 0x10000 ----
# (descriptor table at +0, avail ring at +0x400, used ring at +0x600)
def vring(num_log2, start, chains, ram_len=0xa00):
    """chains: list of (readable parts [(offset, bytes)], writable (offset, len))."""
    ram = bytearray(ram_len)
    di = 0
    heads = []
    for parts, resp in chains:
        heads.append(di)
        descs = [(0x10000 + o, len(b), 0) for o, b in parts]
        for o, b in parts:
            ram[o:o + len(b)] = b
        if resp:
            descs.append((0x10000 + resp[0], resp[1], 2))
        for k, (a, l, f) in enumerate(descs):
            nxt = di + 1 if k + 1 < len(descs) else 0
            f |= 1 if k + 1 < len(descs) else 0
            struct.pack_into('<QIHH', ram, 16 * di, a, l, f, nxt)
            di += 1
    struct.pack_into('<HH', ram, 0x400, 0, (start + len(heads)) & 0xffff)
    num = 1 << num_log2
    for i, h in enumerate(heads):
        struct.pack_into('<H', ram, 0x404 + 2 * ((start + i) % num), h)
    return bytes([num_log2]) + struct.pack('<H', start) + bytes(ram)


write('vring', 'display', vring(4, 0, [([(0x900, hdr(GET_DISPLAY_INFO))], (0x8000, 512))]))
write('vring', 'compute', vring(5, 65534, [
    ([(0x900, ctx_create(1))], (0x8000, 64)),
    ([(0x980, blob(1, 3, 0, 8192, [(0x12000, 4096), (0x20000, 4096)], ctx=1)[:56]),
      (0x9c0, struct.pack('<QIIQII', 0x12000, 4096, 0, 0x20000, 4096, 0))], (0x8100, 64)),
    ([(0x9e0, attach(1, 1))], (0x8200, 64)),
    ([(0x800, submit(1, [op(2, dst=1, ln=8192, arg0=5)])[:32]),
      (0x840, submit(1, [op(2, dst=1, ln=8192, arg0=5)])[32:])], (0x8300, 24)),
]))
write('vring', 'short-resp', vring(2, 7, [([(0x900, hdr(GET_DISPLAY_INFO))], (0x8000, 8)),
                                          ([(0x920, hdr(0x102) + struct.pack('<II', 1, 0))], None)]))
