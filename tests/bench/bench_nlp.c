/*
 * bench_nlp.c -- messages per second through the matcher on the demo bot.
 *
 *   build/tests/bench/bench_nlp [BOT_FILE]     (default: $EF_BOT_FILE, else
 *                                               bots/demo.yaml)
 *
 * One thread, one scratch, a realistic mix of short Russian and English
 * customer messages (typos, emoji, order numbers, phones, prices, dates).
 * Each figure is the best of 7 short trials, timed in this thread's CPU
 * time (CLOCK_THREAD_CPUTIME_ID: other processes on a shared machine take
 * the core away but are not counted; they still cost caches).
 * Prints, as `name value unit` lines (never asserts anything):
 *   nlp_match_msgs_per_sec             intents only
 *   nlp_match_entities_msgs_per_sec    intents and entities (what the
 *                                      gateway runs)
 *   nlp_match_entities_no_repair_msgs_per_sec  the same without the
 *                                      repaired second reading (normalize.c);
 *                                      trials of the two alternate
 *   nlp_match_repair_overhead_pct      what the repair stage costs the
 *                                      clean mix: the median over the
 *                                      alternating trial pairs of
 *                                      1 - with / without (the issue allows
 *                                      about 10)
 *   nlp_match_entities_no_model_msgs_per_sec  the clean mix without the
 *                                      statistical second opinion on
 *                                      fallbacks (model.c; 7 of the 54 fall
 *                                      back, 3 of them the model answers)
 *   nlp_match_entities_cold_msgs_per_sec  the clean mix asking the
 *                                      dictionaries and the model's n-gram
 *                                      table about every word
 *                                      (EF_NLP_NO_WORD_MEMO: the cost of words
 *                                      a worker has never seen)
 *   nlp_match_no_prefilter_msgs_per_sec  intents and entities, every
 *                                      pattern run on every message (what
 *                                      the prefilter saves)
 *   nlp_match_repair_msgs_per_sec      messages that need a repair (layout,
 *                                      transliteration, typos)
 *   nlp_match_repair_cold_msgs_per_sec the same asking the dictionaries
 *                                      about every word
 *   nlp_match_entities_instr_per_msg   user-space instructions per message
 *   nlp_match_instr_per_msg            of the clean mix with entities, without
 *   nlp_match_repair_instr_per_msg     and of the repair mix (perf_event_open:
 *                                      the figure that noise on a shared
 *                                      machine does not move; left out when
 *                                      the kernel refuses the counter)
 *   nlp_bot_intents                    intents in the bot
 * The goal is above 1,000,000 messages/s per core with entities.
 *
 *   bench_nlp --loop clean|bare|repair PASSES [BOT_FILE]
 * only runs that mix (bare: the clean mix without entities) PASSES times
 * after 10 passes of warm-up and prints nothing: a target for perf record,
 * or for valgrind --tool=callgrind --toggle-collect=ef_nlp_match where the
 * machine has no instruction counter (its Ir over the calls is
 * deterministic).
 */
#include "nlp/nlp.h"

#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static const char *const messages[] = {
    "Привет",
    "здравствуйте",
    "Где мой заказ?",
    "где заказ А-1042",
    "когда придет посылка",
    "заказ не пришел уже неделю 😡",
    "87654321-0012-1",
    "Сколько стоит доставка в Казань?",
    "доставка завтра будет?",
    "хочу вернуть товар, не подошел размер",
    "верните деньги 1 500 ₽",
    "не проходит оплата картой",
    "деньги списали дважды!!!",
    "Отмените заказ A-2077 пожалуйста",
    "хочу изменить адрес доставки",
    "до скольки вы работаете",
    "позовите оператора",
    "ОПЕРАТОР",
    "это ужасный сервис, буду жаловаться",
    "есть в наличии платье 44 размера?",
    "а промокод есть?",
    "какой размер выбрать на рост 170",
    "спасибо!",
    "спс 🙏",
    "пока",
    "да",
    "нет, спасибо",
    "мой телефон +7 916 123-45-67",
    "почта ivan.petrov@mail.ru",
    "можно доставку в пятницу в 6 вечера?",
    "привезите 12 марта после 18:00",
    "купила на вб кроссовки за 3 990 руб",
    "gde moi zakaz",
    "privet",
    "ок 👍",
    "hello",
    "Where is my order?",
    "I want a refund",
    "cancel my order please",
    "do you ship to Kazakhstan?",
    "my card was declined",
    "talk to a human",
    "what are your opening hours",
    "is this in stock in size M?",
    "any discounts?",
    "thanks a lot",
    "bye",
    "it cost $20 and arrived broken",
    "tomorrow at 6pm works",
    "asdfgh",
    "🙂",
    "а вы с какого города отправляете",
    "подскажите пожалуйста, у меня заказ на озоне, статус не меняется третий день",
    "Здравствуйте! Заказывала куртку, пришла с браком, молния сломана. Что делать?",
};

/* Messages only a repaired reading understands: keyboard layout left on
 * English, transliteration, typos (normalize.c). */
static const char *const repair_messages[] = {
    "ljcnfdrf",           "cgfcb,j",
    "ult vjq pfrfp",      "gjpjdbnt jgthfnjhf",
    "vernite dengi",      "kogda pridet moya posylka",
    "где пасылка",        "атмените заказ",
    "када приедет заказ", "хочу аформить вазврат",
    "не праходит аплата", "режим роботы",
};

typedef struct set {
    const char *const *msg;
    size_t n;
} set;

static const set clean = {messages, sizeof(messages) / sizeof(messages[0])};
static const set repair = {repair_messages, sizeof(repair_messages) / sizeof(repair_messages[0])};

#define N_MESSAGES (ms->n)
#define messages (ms->msg)

/* This thread's CPU time in milliseconds: a trial measures what one core
 * does, not how long the scheduler gave the core to others (the machine is
 * shared). */
static int64_t cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Messages per second of CPU time over one trial of about `seconds`. */
static double trial(const ef_bot *bot, const set *ms, unsigned options, double seconds)
{
    size_t lens[64];
    ef_nlp_scratch *sc = ef_nlp_scratch_new(bot);
    ef_nlp_scratch_set_options(sc, options);
    for (size_t i = 0; i < N_MESSAGES; i++)
        lens[i] = strlen(messages[i]);
    ef_nlu_result r;
    const int64_t now = 1773133200;
    /* warm up: grow the scratch, fault in the JIT code */
    for (size_t i = 0; i < N_MESSAGES * 10; i++)
        ef_nlp_match(bot, sc, messages[i % N_MESSAGES], lens[i % N_MESSAGES], now, &r);
    unsigned long long done = 0;
    int64_t start = cpu_ms(), elapsed = 0;
    size_t sink = 0;
    while (elapsed < (int64_t)(seconds * 1000)) {
        for (int rep = 0; rep < 20; rep++) {
            for (size_t i = 0; i < N_MESSAGES; i++) {
                ef_nlp_match(bot, sc, messages[i], lens[i], now, &r);
                sink += r.n_entities + r.n_ranked;
            }
        }
        done += 20 * N_MESSAGES;
        elapsed = cpu_ms() - start;
    }
    ef_nlp_scratch_free(sc);
    if (sink == 0)
        fprintf(stderr, "bench_nlp: nothing matched at all\n");
    return elapsed > 0 ? (double)done * 1000.0 / (double)elapsed : 0;
}

/* The best of several short trials: on a shared machine other processes
 * only ever slow a trial down, so the fastest one is the closest to what one
 * core does. */
#undef messages
#undef N_MESSAGES

static double run(const ef_bot *bot, const set *ms, unsigned options, double seconds)
{
    double best = 0;
    for (int i = 0; i < 7; i++) {
        double r = trial(bot, ms, options, seconds / 7);
        if (r > best)
            best = r;
    }
    return best;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The clean mix with and without the repair stage in alternating trials
 * (so both see the same load): the best of each, and the median of the
 * per-pair overhead in percent. */
static void run_pair(const ef_bot *bot, double seconds, double *with, double *without,
                     double *overhead)
{
    enum { PAIRS = 9 };
    double pct[PAIRS];
    *with = *without = 0;
    for (int i = 0; i < PAIRS; i++) {
        double a, b;
        if (i % 2) {
            b = trial(bot, &clean, EF_NLP_NO_REPAIR, seconds / PAIRS);
            a = trial(bot, &clean, 0, seconds / PAIRS);
        } else {
            a = trial(bot, &clean, 0, seconds / PAIRS);
            b = trial(bot, &clean, EF_NLP_NO_REPAIR, seconds / PAIRS);
        }
        *with = a > *with ? a : *with;
        *without = b > *without ? b : *without;
        pct[i] = b > 0 ? 100.0 * (1.0 - a / b) : 0;
    }
    qsort(pct, PAIRS, sizeof(pct[0]), cmp_double);
    *overhead = pct[PAIRS / 2];
}

/* A counter of this thread's user-space instructions, or -1 when the kernel
 * does not allow one (perf_event_paranoid, containers). */
static int instr_counter(void)
{
    struct perf_event_attr pe;
    memset(&pe, 0, sizeof(pe));
    pe.type = PERF_TYPE_HARDWARE;
    pe.size = sizeof(pe);
    pe.config = PERF_COUNT_HW_INSTRUCTIONS;
    pe.disabled = 1;
    pe.exclude_kernel = 1;
    pe.exclude_hv = 1;
    return (int)syscall(SYS_perf_event_open, &pe, 0, -1, -1, 0);
}

/* Instructions per message of the mix ms with options, over 200 passes
 * after a warm-up (the same work as a trial; the count does not depend on
 * the load of the machine). 0 when no counter is available. */
static double instructions(const ef_bot *bot, const set *ms, unsigned options)
{
    int fd = instr_counter();
    if (fd < 0)
        return 0;
    ef_nlp_scratch *sc = ef_nlp_scratch_new(bot);
    ef_nlp_scratch_set_options(sc, options);
    ef_nlu_result r;
    const int64_t now = 1773133200;
    enum { PASSES = 200 };
    for (size_t i = 0; i < ms->n * 10; i++)
        ef_nlp_match(bot, sc, ms->msg[i % ms->n], strlen(ms->msg[i % ms->n]), now, &r);
    size_t lens[64];
    for (size_t i = 0; i < ms->n; i++)
        lens[i] = strlen(ms->msg[i]);
    ioctl(fd, PERF_EVENT_IOC_RESET, 0);
    ioctl(fd, PERF_EVENT_IOC_ENABLE, 0);
    for (int pass = 0; pass < PASSES; pass++)
        for (size_t i = 0; i < ms->n; i++)
            ef_nlp_match(bot, sc, ms->msg[i], lens[i], now, &r);
    ioctl(fd, PERF_EVENT_IOC_DISABLE, 0);
    long long count = 0;
    if (read(fd, &count, sizeof(count)) != (ssize_t)sizeof(count))
        count = 0;
    close(fd);
    ef_nlp_scratch_free(sc);
    return (double)count / (double)(PASSES * ms->n);
}

/* bench_nlp --loop MIX PASSES [BOT_FILE]: one mix only, for a profiler. */
static int loop_only(const ef_bot *bot, const char *mix, long passes)
{
    const set *ms = strcmp(mix, "repair") == 0 ? &repair : &clean;
    unsigned options = strcmp(mix, "bare") == 0 ? EF_NLP_NO_ENTITIES : 0;
    if (strcmp(mix, "clean") != 0 && strcmp(mix, "bare") != 0 && strcmp(mix, "repair") != 0) {
        fprintf(stderr, "bench_nlp: --loop clean|bare|repair PASSES [BOT_FILE]\n");
        return 2;
    }
    ef_nlp_scratch *sc = ef_nlp_scratch_new(bot);
    ef_nlp_scratch_set_options(sc, options);
    ef_nlu_result r;
    for (long pass = 0; pass < passes + 10; pass++)
        for (size_t i = 0; i < ms->n; i++)
            ef_nlp_match(bot, sc, ms->msg[i], strlen(ms->msg[i]), 1773133200, &r);
    ef_nlp_scratch_free(sc);
    return 0;
}

int main(int argc, char **argv)
{
    const char *loop_mix = NULL;
    long loop_passes = 0;
    if (argc > 3 && strcmp(argv[1], "--loop") == 0) {
        loop_mix = argv[2];
        loop_passes = atol(argv[3]);
        argc -= 3;
        argv += 3;
    }
    const char *path = argc > 1 ? argv[1] : getenv("EF_BOT_FILE");
    if (!path || !path[0])
        path = "bots/demo.yaml";
    char err[1024];
    ef_bot *bot = NULL;
    if (ef_bot_load(path, &bot, err, sizeof(err)) != 0) {
        fprintf(stderr, "bench_nlp: %s\n", err);
        return 1;
    }
    if (loop_mix) {
        int rc = loop_only(bot, loop_mix, loop_passes);
        ef_bot_free(bot);
        return rc;
    }
    printf("nlp_match_msgs_per_sec %.0f msg/s\n", run(bot, &clean, EF_NLP_NO_ENTITIES, 1.5));
    double with, without, overhead;
    run_pair(bot, 3.0, &with, &without, &overhead);
    printf("nlp_match_entities_msgs_per_sec %.0f msg/s\n", with);
    printf("nlp_match_entities_no_repair_msgs_per_sec %.0f msg/s\n", without);
    printf("nlp_match_repair_overhead_pct %.1f %%\n", overhead);
    printf("nlp_match_entities_no_model_msgs_per_sec %.0f msg/s\n",
           run(bot, &clean, EF_NLP_NO_MODEL, 1.0));
    printf("nlp_match_entities_cold_msgs_per_sec %.0f msg/s\n",
           run(bot, &clean, EF_NLP_NO_WORD_MEMO, 1.0));
    printf("nlp_match_no_prefilter_msgs_per_sec %.0f msg/s\n",
           run(bot, &clean, EF_NLP_NO_PREFILTER, 1.0));
    printf("nlp_match_repair_msgs_per_sec %.0f msg/s\n", run(bot, &repair, 0, 1.0));
    printf("nlp_match_repair_cold_msgs_per_sec %.0f msg/s\n",
           run(bot, &repair, EF_NLP_NO_WORD_MEMO, 1.0));
    double ie = instructions(bot, &clean, 0);
    if (ie > 0) {
        printf("nlp_match_entities_instr_per_msg %.0f instructions\n", ie);
        printf("nlp_match_instr_per_msg %.0f instructions\n",
               instructions(bot, &clean, EF_NLP_NO_ENTITIES));
        printf("nlp_match_repair_instr_per_msg %.0f instructions\n", instructions(bot, &repair, 0));
    }
    printf("nlp_bot_intents %zu intents\n", ef_bot_intent_count(bot));
    ef_bot_free(bot);
    return 0;
}
