def write(folder):
    return folder
