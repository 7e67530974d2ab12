/* cf_list: container_of and an intrusive, circular, doubly linked list.
 *
 * The owner embeds a struct cf_list and gets itself back with container_of, so a list never
 * allocates and unlinking is O(1) with no search. A list head is a cf_list whose prev and next
 * point at itself when empty; an unlinked node is kept self-linked so cf_list_remove is
 * idempotent and cf_list_linked tells whether a node is on some list. */
#ifndef CONNFAULT_CF_LIST_H
#define CONNFAULT_CF_LIST_H

#include <stdbool.h>
#include <stddef.h>

/* The object of type TYPE whose MEMBER is at PTR. */
#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

struct cf_list {
    struct cf_list *prev, *next;
};

static inline void cf_list_init(struct cf_list *node)
{
    node->prev = node->next = node;
}

static inline bool cf_list_empty(const struct cf_list *head)
{
    return head->next == head;
}

/* For a node: true while it is on a list (a head: while the list is not empty). */
static inline bool cf_list_linked(const struct cf_list *node)
{
    return node->next != node;
}

static inline void cf_list_insert_between(struct cf_list *node, struct cf_list *prev,
                                          struct cf_list *next)
{
    node->prev = prev;
    node->next = next;
    prev->next = node;
    next->prev = node;
}

static inline void cf_list_push_back(struct cf_list *head, struct cf_list *node)
{
    cf_list_insert_between(node, head->prev, head);
}

static inline void cf_list_push_front(struct cf_list *head, struct cf_list *node)
{
    cf_list_insert_between(node, head, head->next);
}

static inline void cf_list_remove(struct cf_list *node)
{
    node->prev->next = node->next;
    node->next->prev = node->prev;
    cf_list_init(node);
}

/* The first node, or NULL when empty. */
static inline struct cf_list *cf_list_first(const struct cf_list *head)
{
    return cf_list_empty(head) ? NULL : head->next;
}

/* Walk the list; the body may remove (only) the current node. */
#define cf_list_for_each_safe(pos, tmp, head)                                                      \
    for ((pos) = (head)->next, (tmp) = (pos)->next; (pos) != (head);                               \
         (pos) = (tmp), (tmp) = (pos)->next)

#endif
