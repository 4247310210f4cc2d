/** Column definitions shared by every entity. */
export const idColumn = { type: 'uuid', primary: true } as const;
export const tenantIdColumn = { type: 'uuid' } as const;
export const createdAtColumn = { type: 'datetime', onCreate: () => new Date() } as const;
export const updatedAtColumn = {
  type: 'datetime',
  onCreate: () => new Date(),
  onUpdate: () => new Date(),
} as const;
