/*
 * mcu/startup.c - the smallest Cortex-M start-up for the sizing image: the
 * vector table (initial stack pointer + the ARMv7-M system exceptions; an
 * ARMv6-M core reads the same table and ignores the M4-only entries) and a
 * reset handler that copies .data from flash, zeroes .bss and calls main().
 * No C library start-up (-nostartfiles): nothing is constructed, nothing
 * exits. Symbols come from mcu/cortex-m.ld.
 */
#include <stdint.h>

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
int main(void);
void Reset_Handler(void);
void Default_Handler(void);

__attribute__((noreturn)) void Reset_Handler(void)
{
    uint32_t *src = &_sidata, *dst = &_sdata;

    while (dst < &_edata)
        *dst++ = *src++;
    for (dst = &_sbss; dst < &_ebss;)
        *dst++ = 0;
    (void)main();
    for (;;) {
    }
}

__attribute__((noreturn)) void Default_Handler(void)
{
    for (;;) {
    }
}

typedef struct vector_table {
    uint32_t *initial_sp;
    void (*handlers[15])(void); /* Reset .. SysTick */
} vector_table_t;

__attribute__((used, section(".isr_vector"))) const vector_table_t vector_table = {
    .initial_sp = &_estack,
    .handlers = {Reset_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler,
                 Default_Handler, 0, 0, 0, 0, Default_Handler, Default_Handler, 0, Default_Handler,
                 Default_Handler},
};
