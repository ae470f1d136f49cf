#pragma once
#include <stddef.h>
#include <stdint.h>
/* CRC-32 (IEEE 802.3, reflected, poly 0xEDB88320) of buf, continuing crc. */
uint32_t crc32_update(uint32_t crc, const unsigned char *buf, size_t len);
