# Devices of the QEMU that qemu/build.sh builds (--without-default-devices):
# the i440FX PC, virtio over PCI (vhost-user-device-pci) and virtio-9p.
CONFIG_I440FX=y
CONFIG_VIRTIO_PCI=y
CONFIG_VIRTIO_9P=y
